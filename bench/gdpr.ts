import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { sql } from 'slonik';
import { z } from 'zod';
import { createActivities } from '../activities';
import { createClickHouse } from '../lib/clients/clickhouse';
import { createKafka } from '../lib/clients/kafka';
import { createMinio } from '../lib/clients/minio';
import { createOpenSearch } from '../lib/clients/opensearch';
import { createPaymentProvider } from '../lib/clients/payments';
import { createPostgresPool } from '../lib/clients/postgres';
import { config } from '../lib/config';
import { ListFollower } from '../lib/erasure-lists';
import { ch } from '../lib/clickhouse-sql';
import { scratchSearchAndObjects, scratchTickPipeline } from '../stack/scratch';
import { runSeed } from '../scripts/seed/run';
import { SuppressionList } from '../workers/sink/suppressions';
import { gdprErasure, gdprExport } from '../workflows';
import { deleteUserRows, userMutations, userTables } from '../activities/compliance/clickhouse';
import { gdprErasureWorkflowId, gdprExportWorkflowId, SEARCH } from '../workflows/compliance/contract';
import { summary } from './report';

/**
 * npm run bench:gdpr -- [--plays 370000] [--user-ticks 100000]
 * Erasure of a listener with 100k play-ticks among ~10M, end to end (Temporal → worker → every store),
 * against the floor measured in the same run: the bare ClickHouse mutations (ALTER … DELETE on every table
 * with the user, polled to done) for another listener of the same size. Target: erasure ≤ 2 min and
 * ≤ 1.5 × the floor; export of the same listener ≤ 1 min. Scratch databases, indices and buckets; a task
 * queue of its own, so no other worker takes its runs.
 */
const Id = z.object({ id: z.string() });

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      plays: { type: 'string', default: '370000' },
      'user-ticks': { type: 'string', default: '100000' },
    },
  });
  const userTicks = Number(values['user-ticks']);
  const base = config();
  const pipe = await scratchTickPipeline(base, 'bench-gdpr', 3);
  const objects = await scratchSearchAndObjects(pipe.config);
  const cfg = { ...pipe.config, opensearch: objects.config.opensearch, minio: objects.config.minio };
  cfg.kafka = { ...cfg.kafka, topics: pipe.topics };
  const pool = await createPostgresPool(cfg.postgres, 8);
  const clickhouse = createClickHouse(cfg.clickhouse);
  const opensearch = createOpenSearch(cfg.opensearch);
  const minio = createMinio(cfg.minio);
  const holders = [
    new ListFollower(pool, { list: 'denied_subjects', role: 'api' }),
    new SuppressionList(pool),
  ];
  const connection = await Connection.connect({ address: cfg.temporal.address });
  const client = new Client({ connection, namespace: cfg.temporal.namespace });
  const native = await NativeConnection.connect({ address: cfg.temporal.address });
  const taskQueue = `compliance-bench-${pipe.id}`;
  try {
    process.stdout.write(`seeding ~${(Number(values.plays) * 27.4) / 1e6}M ticks…\n`);
    const seeded = await runSeed(cfg, {
      scale: 'small',
      seed: 7,
      now: new Date(),
      plays: Number(values.plays),
      via: 'clickhouse',
    });
    process.stdout.write(`seeded ${seeded.ticks} ticks in ${seeded.seconds.toFixed(0)} s\n`);

    // Two listeners of the same size: one for the bare mutations (the floor), one for the erasure.
    const listener = async (label: string) => {
      const id = await pool.oneFirst(sql.type(Id)`
        INSERT INTO users (email, display_name, country) VALUES (${`${label}-${randomUUID()}@bench.example`}, ${label}, 'SE')
        RETURNING user_id::text AS id`);
      const tracks = await pool.anyFirst(sql.type(Id)`SELECT track_id::text AS id FROM tracks LIMIT 50`);
      const now = Date.now();
      for (let done = 0; done < userTicks;) {
        const rows: string[] = [];
        for (let k = 0; k < 50_000 && done < userTicks; k += 50) {
          const play = randomUUID();
          const track = tracks[(done / 50) % tracks.length] as string;
          for (let t = 0; t < 50 && done < userTicks; t++, done++) {
            const at = new Date(now - 20 * 86_400_000 + done * 5000)
              .toISOString()
              .slice(0, 19)
              .replace('T', ' ');
            rows.push(
              `${randomUUID()}\t${play}\t${id}\t${track}\tSE\tbench-device\t${(t + 1) * 5000}\t${at}`,
            );
          }
        }
        await clickhouse.command({
          query: `INSERT INTO play_ticks (event_id, play_id, user_id, track_id, country, device_id, position_ms, event_time) FORMAT TabSeparated\n${rows.join('\n')}\n`,
        });
      }
      await clickhouse.insert({
        table: 'dim_users',
        values: [{ user_id: id, signup_date: '2024-01-01', country: 'SE', tier: 'free', version: 1 }],
        format: 'JSONEachRow',
      });
      return id;
    };
    const floorUser = await listener('floor');
    const erasedUser = await listener('erased');
    const [{ n: total }] = (await (
      await clickhouse.query({ query: 'SELECT count() AS n FROM play_ticks', format: 'JSONEachRow' })
    ).json<{ n: string }>()) as [{ n: string }];
    process.stdout.write(`play_ticks holds ${total} rows; each listener ${userTicks}\n`);

    for (const h of holders) await h.start();
    const worker = await Worker.create({
      connection: native,
      namespace: cfg.temporal.namespace,
      taskQueue,
      workflowsPath: require.resolve('../workflows'),
      activities: createActivities({
        compliance: {
          pool,
          clickhouse,
          opensearch,
          minio,
          kafka: createKafka(cfg.kafka, 'bench-gdpr'),
          temporal: client,
          provider: createPaymentProvider(cfg.payments),
          indexPrefix: cfg.opensearch.indexPrefix,
          bucketPrefix: cfg.minio.bucketPrefix,
          topics: pipe.topics,
          codeVersion: 'bench',
        },
      }),
    });
    const results = await worker.runUntil(async () => {
      const attrs = (requestId: string, userId: string) => [
        { key: SEARCH.requestId, value: requestId },
        { key: SEARCH.userId, value: userId },
      ];
      // Export of the listener to be erased.
      const exportId = randomUUID();
      let t = performance.now();
      const exported = await (
        await client.workflow.start(gdprExport, {
          taskQueue,
          workflowId: gdprExportWorkflowId(exportId),
          args: [{ requestId: exportId, userId: erasedUser, requester: 'bench' }],
          typedSearchAttributes: attrs(exportId, erasedUser),
        })
      ).result();
      const exportSeconds = (performance.now() - t) / 1000;
      process.stdout.write(`export: ${exported.bytes} bytes in ${exportSeconds.toFixed(1)} s\n`);

      // The floor: the bare mutations for the other listener, issued together and polled to done.
      t = performance.now();
      const tables = (
        await (
          await clickhouse.query({ query: userTables().text, format: 'JSONEachRow' })
        ).json<{ table: string }>()
      ).map((r) => r.table);
      await Promise.all(
        tables.map((table) => clickhouse.command({ query: deleteUserRows(table, floorUser).text })),
      );
      for (;;) {
        const rows = await (
          await clickhouse.query({ query: userMutations(floorUser).text, format: 'JSONEachRow' })
        ).json<{ running: string }>();
        if (rows.every((r) => Number(r.running) === 0)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const floorSeconds = (performance.now() - t) / 1000;
      process.stdout.write(`floor (bare mutations on ${tables.join(', ')}): ${floorSeconds.toFixed(1)} s\n`);

      // The erasure, end to end.
      const requestId = randomUUID();
      t = performance.now();
      const erased = await (
        await client.workflow.start(gdprErasure, {
          taskQueue,
          workflowId: gdprErasureWorkflowId(requestId),
          args: [{ requestId, userId: erasedUser, requester: 'bench', reason: 'objection' }],
          typedSearchAttributes: attrs(requestId, erasedUser),
        })
      ).result();
      const erasureSeconds = (performance.now() - t) / 1000;
      const [left] = await (
        await clickhouse.query({
          query: ch`SELECT count() AS n FROM play_ticks WHERE user_id = toUUID(${erasedUser})`.text,
          format: 'JSONEachRow',
        })
      ).json<{ n: string }>();
      process.stdout.write(
        `erasure: ${erased.outcome} in ${erasureSeconds.toFixed(1)} s; ticks left ${left?.n}\n`,
      );
      return { exportSeconds, exportBytes: exported.bytes ?? 0, floorSeconds, erasureSeconds };
    });
    summary('gdpr', {
      ticks_in_table: Number(total),
      user_ticks: userTicks,
      export_s: results.exportSeconds,
      export_bytes: results.exportBytes,
      floor_mutation_s: results.floorSeconds,
      erasure_s: results.erasureSeconds,
      erasure_over_floor: results.erasureSeconds / results.floorSeconds,
      target_erasure_2min: results.erasureSeconds <= 120 ? 'met' : 'missed',
      target_1_5x_floor: results.erasureSeconds <= 1.5 * results.floorSeconds ? 'met' : 'missed',
      target_export_1min: results.exportSeconds <= 60 ? 'met' : 'missed',
    });
  } finally {
    for (const h of holders) await h.stop().catch(() => undefined);
    await Promise.allSettled([native.close(), connection.close()]);
    await Promise.allSettled([clickhouse.close(), opensearch.close(), pool.end()]);
    await Promise.allSettled([pipe.drop(), objects.drop()]);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
