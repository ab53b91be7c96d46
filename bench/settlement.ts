import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import type { temporal } from '@temporalio/proto';
import { from as copyFrom } from 'pg-copy-streams';
import { sql } from 'slonik';
import { z } from 'zod';
import { createActivities } from '../activities';
import { AGGREGATION_SETTINGS, bareAggregation } from '../activities/royalties/aggregate';
import { createClickHouse } from '../lib/clients/clickhouse';
import { bucketName, createMinio } from '../lib/clients/minio';
import { createCopyPool, createPostgresPool } from '../lib/clients/postgres';
import { loadConfig } from '../lib/config';
import { isrcFor, upcFor } from '../scripts/seed/codes';
import { COUNTRIES } from '../scripts/seed/generate';
import { migrateClickHouse } from '../sql/migrate/clickhouse';
import { migratePostgres } from '../sql/migrate/postgres';
import { scratchDatabases, scratchSearchAndObjects } from '../stack/scratch';
import { setUpTracing } from '../lib/telemetry';
import { tracingWorkerOptions, WORKFLOW_INTERCEPTORS } from '../workers/interceptors';
import { royaltySettlement } from '../workflows';
import { TASK_QUEUE, settlementWorkflowId, type SettlementInput } from '../workflows/royalties/contract';
import { summary } from './report';

/**
 * npm run bench:settlement -- [--plays 10000000] [--tracks 100000] [--artists 20000] [--countries 60] [--shards 8]
 *
 * One month's royalty settlement at the issue's size, on scratch databases of the running stack, through
 * the real workflow (an in-process worker on the test namespace, so the demo worker never sees it):
 *   - the catalog (artists, albums, tracks) and a rate version of artists × countries go into PostgreSQL by
 *     COPY; the month's royalty-bearing plays (6–8 ticks each, log-uniform track popularity, skewed
 *     countries, 1M listeners) are generated inside ClickHouse straight into the `plays` rollup — the
 *     table a settlement reads — as the view would after merges (not timed);
 *   - the floor, in the same run: the bare ClickHouse aggregation (royalty-bearing plays per track and
 *     country) and that result COPYed into an unindexed PostgreSQL table;
 *   - the whole run (freeze → snapshot → payouts in shard children → statement → conclusion), and a
 *     same-pins re-run (a verification: payouts and statement again from the snapshot, ClickHouse
 *     re-aggregated and compared) — phases from the workflow histories.
 * Policy: the platform's rules (bot bursts on) with the trailing minimum at 1 stream, so that subquery
 * runs and every line is paid (the heaviest case). Targets: run ≤ 60 s and ≤ 2 × floor; re-run ≤ 0.5 × run.
 */
const MONTH = '2026-10';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      plays: { type: 'string', default: '10000000' },
      tracks: { type: 'string', default: '100000' },
      artists: { type: 'string', default: '20000' },
      countries: { type: 'string', default: '60' },
      shards: { type: 'string', default: '8' },
      listeners: { type: 'string', default: '1000000' },
    },
  });
  const plays = Number(values.plays);
  const tracks = Number(values.tracks);
  const artists = Number(values.artists);
  const countries = COUNTRIES.slice(0, Number(values.countries));
  const shards = Number(values.shards);
  const listeners = Number(values.listeners);
  if (tracks % artists !== 0) throw new Error('--tracks must be a multiple of --artists');

  const base = loadConfig({
    ...process.env,
    CADENZA_TEMPORAL_NAMESPACE: process.env.CADENZA_TEST_NAMESPACE ?? 'cadenza-test',
  });
  const db = await scratchDatabases(base);
  const objects = await scratchSearchAndObjects(db.config);
  const cfg = objects.config;
  const pool = await createPostgresPool(cfg.postgres, 10);
  const copyPool = createCopyPool(cfg.postgres, 4);
  const clickhouse = createClickHouse(cfg.clickhouse, cfg.clickhouse.database, 3_600_000);
  const log = (m: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
  try {
    await migratePostgres(cfg.postgres);
    await migrateClickHouse(cfg.clickhouse);

    // Catalog and rates, by COPY.
    let t = Date.now();
    const copyRows = async (statement: string, rows: Iterable<string>) => {
      const client = await copyPool.connect();
      try {
        await pipeline(Readable.from(batched(rows)), client.query(copyFrom(statement)));
      } finally {
        client.release();
      }
    };
    const id = (kind: number, n: number) =>
      `${kind.toString(16).padStart(8, '0')}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
    const perArtist = tracks / artists;
    await copyRows(
      'COPY artists (artist_id, name, country) FROM STDIN',
      gen(artists, (a) => `${id(1, a)}\tArtist ${a}\t${countries[a % countries.length]}\n`),
    );
    await copyRows(
      'COPY albums (album_id, artist_id, title, upc, release_date) FROM STDIN',
      gen(artists, (a) => `${id(2, a)}\t${id(1, a)}\tAlbum ${a}\t${upcFor(a + 1)}\t2024-01-01\n`),
    );
    await copyRows(
      'COPY tracks (track_id, album_id, artist_id, title, isrc, duration_ms, checksum_sha256, release_date, status) FROM STDIN',
      gen(tracks, (i) => {
        const a = Math.floor(i / perArtist);
        const sha = createHash('sha256').update(`bench:${i}`).digest('hex');
        return `${id(3, i)}\t${id(2, a)}\t${id(1, a)}\tTrack ${i}\t${isrcFor('SE', a, 2024, (i % perArtist) + 1)}\t180000\t${sha}\t2024-01-01\tavailable\n`;
      }),
    );
    await pool.query(sql.unsafe`INSERT INTO royalty_rate_versions (rate_version, note) VALUES (1, 'bench')`);
    const currency = (c: string) =>
      ['DE', 'FR', 'ES', 'IT', 'NL'].includes(c) ? 'EUR' : c === 'GB' ? 'GBP' : 'USD';
    await copyRows(
      'COPY royalty_rates (artist_id, country, rate_per_play, currency, rate_version, effective_from) FROM STDIN',
      gen(artists * countries.length, (n) => {
        const a = Math.floor(n / countries.length);
        const c = countries[n % countries.length] as string;
        return `${id(1, a)}\t${c}\t0.00${String(1000 + ((a * 7919 + n * 31) % 8999)).padStart(4, '0')}\t${currency(c)}\t1\t2020-01-01\n`;
      }),
    );
    await pool.query(
      sql.unsafe`UPDATE royalty_rate_versions SET published_at = now() WHERE rate_version = 1`,
    );
    await pool.query(sql.unsafe`
      INSERT INTO royalty_policies (policy_version, min_play_seconds, min_trailing_streams, trailing_months, bot_rule,
        bot_short_play_seconds, bot_window_seconds, bot_min_short_plays, rounding, note)
      VALUES (2, 30, 1, 12, 'short-play-bursts', 15, 600, 10, 'largest-remainder', 'bench: every line paid')`);
    log(`catalog ${artists} artists, ${tracks} tracks, ${artists * countries.length} rates in ${s(t)} s`);

    // The month's plays, generated inside ClickHouse into the rollup.
    t = Date.now();
    await clickhouse.command({
      query: 'CREATE TABLE bench_tracks (i UInt32, track_id UUID) ENGINE = Memory',
    });
    await clickhouse.insert({
      table: 'bench_tracks',
      values: Readable.from(batched(gen(tracks, (i) => `${i}\t${id(3, i)}\n`)), { objectMode: false }),
      format: 'TabSeparated',
    });
    const countryList = `[${countries.map((c) => `'${c}'`).join(', ')}]`;
    const uuidOf = (prefix: string, n: string) =>
      `toUUID(concat('${prefix}', substring(concat('000000000000', lower(hex(${n}))), length(hex(${n})) + 1, 12)))`;
    const chunk = 1_000_000;
    for (let from = 0; from < plays; from += chunk) {
      const n = Math.min(chunk, plays - from);
      await clickhouse.command({
        query: `
          INSERT INTO plays
          SELECT toDate(at) AS day, track_id, play_id, user_id, country, toStartOfHour(at + 30) AS ingested_hour,
                 minState(at) AS started_at, uniqExactState(event_id) AS ticks, maxState(position_ms) AS max_position_ms
          FROM (
            SELECT track_id, ${uuidOf('00000000-0000-4000-9000-', 'p')} AS play_id,
                   ${uuidOf('00000000-0000-4000-a000-', 'toUInt64(intHash32(p) % ' + listeners + ')')} AS user_id,
                   country, arrayJoin(range(6 + p % 3)) AS k, toDateTime(start + (k + 1) * 5, 'UTC') AS at,
                   ${uuidOf('00000000-0000-4000-b000-', 'p * 16 + k')} AS event_id, toUInt32((k + 1) * 5000) AS position_ms
            FROM (
              SELECT number AS p,
                     toUInt32(floor(pow(${tracks}, intHash64(number) / 18446744073709551616.0)) - 1) AS i,
                     arrayElement(${countryList}, toUInt32(floor(pow(${countries.length}, intHash64(number + 7) / 18446744073709551616.0)))) AS country,
                     toDateTime('${MONTH}-01 00:00:00', 'UTC') + intHash32(number * 3) % (31 * 86400 - 600) AS start
              FROM numbers(${from}, ${n})
            ) AS generated
            ALL INNER JOIN bench_tracks USING i
          )
          GROUP BY day, track_id, play_id, user_id, country, ingested_hour`,
      });
      log(`plays ${from + n}/${plays}`);
    }
    await clickhouse.command({ query: 'OPTIMIZE TABLE plays FINAL' });
    log(`plays generated in ${s(t)} s`);

    // The floor: the bare aggregation, alone and COPYed into a bare table.
    const pins = { month: MONTH, ingestionCutoff: '2026-11-01T02:00:00.000Z' };
    const bare = bareAggregation(pins, 6);
    t = Date.now();
    let floorLines = 0;
    const { stream } = await clickhouse.exec({
      query: `${bare.text}\nFORMAT TabSeparated`,
      clickhouse_settings: AGGREGATION_SETTINGS,
    });
    await pipeline(
      stream,
      new Writable({
        write: (c: Buffer, _e, done) => {
          for (let i = c.indexOf(10); i !== -1; i = c.indexOf(10, i + 1)) floorLines++;
          done();
        },
      }),
    );
    const floorAggregation = s(t);
    await pool.query(sql.unsafe`CREATE TABLE floor_lines (track_id uuid, country char(2), plays bigint)`);
    t = Date.now();
    {
      const client = await copyPool.connect();
      try {
        const { stream: rows } = await clickhouse.exec({
          query: `${bare.text}\nFORMAT TabSeparated`,
          clickhouse_settings: AGGREGATION_SETTINGS,
        });
        await pipeline(rows, client.query(copyFrom('COPY floor_lines FROM STDIN')));
      } finally {
        client.release();
      }
    }
    const floor = s(t);
    log(`floor: aggregation ${floorAggregation} s, aggregation → COPY ${floor} s, ${floorLines} lines`);

    // The settlement through the workflow.
    const connection = await NativeConnection.connect({ address: cfg.temporal.address });
    const worker = await Worker.create({
      connection,
      namespace: cfg.temporal.namespace,
      taskQueue: TASK_QUEUE,
      workflowBundle: await bundleWorkflowCode({
        workflowsPath: require.resolve('../workflows'),
        workflowInterceptorModules: [WORKFLOW_INTERCEPTORS],
        logger: { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop },
      }),
      activities: createActivities({
        royalties: {
          pool,
          copyPool,
          clickhouse,
          minio: createMinio(cfg.minio),
          bucket: bucketName('royalties', cfg.minio.bucketPrefix),
        },
      }),
      maxConcurrentActivityTaskExecutions: shards + 2,
      ...tracingWorkerOptions(setUpTracing(cfg.otel, 'bench-settlement')),
    });
    const running = worker.run();
    const clientConnection = await Connection.connect({ address: cfg.temporal.address });
    const client = new Client({ connection: clientConnection, namespace: cfg.temporal.namespace });
    const input = (rerun: number): SettlementInput => ({
      month: MONTH,
      rerun,
      startedBy: 'bench',
      shards,
      latenessHours: 2,
      reminderDays: 3,
    });
    const timed = async (rerun: number) => {
      const workflowId = settlementWorkflowId(MONTH, rerun);
      const started = Date.now();
      const handle = await client.workflow.start(royaltySettlement, {
        taskQueue: TASK_QUEUE,
        workflowId,
        args: [input(rerun)],
        workflowIdReusePolicy: 'TERMINATE_IF_RUNNING',
      });
      let progress = await handle.query('progress');
      while (!['awaiting_approval', 'held', 'verified'].includes((progress as { status: string }).status)) {
        await new Promise((r) => setTimeout(r, 100));
        progress = await handle.query('progress');
      }
      const seconds = s(started);
      const history = await handle.fetchHistory();
      return {
        seconds,
        phases: phases(history.events ?? []),
        progress: progress as { statementSha256: string },
      };
    };
    const first = await timed(0);
    log(`run ${first.seconds} s ${JSON.stringify(first.phases)}`);
    const again = await timed(1);
    log(`same-pins re-run ${again.seconds} s ${JSON.stringify(again.phases)}`);
    await client.workflow
      .getHandle(settlementWorkflowId(MONTH))
      .cancel()
      .catch(() => undefined);
    await new Promise((r) => setTimeout(r, 2000));
    worker.shutdown();
    await running;
    await connection.close();
    await clientConnection.close();

    const stats = await pool.one(sql.type(
      z.object({
        lines: z.number(),
        paid: z.number(),
        bytes: z.number(),
        reproduced: z.boolean().nullable(),
      }),
    )`
      SELECT (SELECT snapshot_lines FROM settlement_runs WHERE rerun = 0)::bigint AS lines,
             (SELECT count(*) FROM payout_lines WHERE run_id = (SELECT run_id FROM settlement_runs WHERE rerun = 0))::bigint AS paid,
             (SELECT statement_bytes FROM settlement_runs WHERE rerun = 0)::bigint AS bytes,
             (SELECT reproduced FROM settlement_runs WHERE rerun = 1) AS reproduced`);
    summary('settlement', {
      plays,
      tracks,
      artists,
      countries: countries.length,
      shards,
      snapshot_lines: stats.lines,
      payout_lines: stats.paid,
      statement_mb: stats.bytes / 2 ** 20,
      floor_aggregation_s: floorAggregation,
      floor_s: floor,
      run_s: first.seconds,
      snapshot_s: first.phases.snapshotPlays ?? 0,
      payouts_s: first.phases.payouts ?? 0,
      statement_s: first.phases.writeStatement ?? 0,
      run_vs_floor: first.seconds / floor,
      rerun_s: again.seconds,
      rerun_compare_s: again.phases.compareWithClickHouse ?? 0,
      rerun_payouts_s: again.phases.payouts ?? 0,
      rerun_statement_s: again.phases.writeStatement ?? 0,
      rerun_vs_run: again.seconds / first.seconds,
      same_sha256: String(
        first.progress.statementSha256 === again.progress.statementSha256 && stats.reproduced === true,
      ),
      target_run_60s: first.seconds <= 60 ? 'met' : 'missed',
      target_run_2x_floor: first.seconds <= 2 * floor ? 'met' : 'missed',
      target_rerun_half: again.seconds <= 0.5 * first.seconds ? 'met' : 'missed',
    });
  } finally {
    await Promise.allSettled([pool.end(), copyPool.end(), clickhouse.close()]);
    await objects.drop();
    await db.drop();
  }
}

const noop = () => undefined;
const s = (since: number) => (Date.now() - since) / 1000;

function* gen(n: number, row: (i: number) => string): Generator<string> {
  for (let i = 0; i < n; i++) yield row(i);
}

/** Rows in chunks of ~1 MB, so streams move buffers, not strings one by one. */
function* batched(rows: Iterable<string>): Generator<Buffer> {
  let out = '';
  for (const r of rows) {
    out += r;
    if (out.length > 1 << 20) {
      yield Buffer.from(out);
      out = '';
    }
  }
  if (out) yield Buffer.from(out);
}

/** Seconds per activity type (longest of its runs) and for the shard children, from a run's history. */
function phases(events: temporal.api.history.v1.IHistoryEvent[]): Record<string, number> {
  const at = (e: temporal.api.history.v1.IHistoryEvent) =>
    Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
  const scheduled = new Map<number, { name: string; at: number }>();
  const out: Record<string, number> = {};
  let childrenFrom = Infinity;
  let childrenTo = 0;
  for (const e of events) {
    const id = Number(e.eventId);
    if (e.activityTaskScheduledEventAttributes)
      scheduled.set(id, {
        name: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?',
        at: at(e),
      });
    const done = e.activityTaskCompletedEventAttributes;
    if (done) {
      const start = scheduled.get(Number(done.scheduledEventId));
      if (start) out[start.name] = Math.max(out[start.name] ?? 0, (at(e) - start.at) / 1000);
    }
    if (e.startChildWorkflowExecutionInitiatedEventAttributes) childrenFrom = Math.min(childrenFrom, at(e));
    if (e.childWorkflowExecutionCompletedEventAttributes) childrenTo = Math.max(childrenTo, at(e));
  }
  if (childrenTo > 0) out.payouts = (childrenTo - childrenFrom) / 1000;
  return out;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:settlement failed: ${String(err)}\n`);
  process.exit(1);
});
