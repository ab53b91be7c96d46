import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import { ROW_COLUMNS, TickRows } from '../lib/play-tick-rows';
import { parseArgs } from 'node:util';
import { mintDevToken } from '../lib/auth/dev-issuer';
import { ch, join } from '../lib/clickhouse-sql';
import { createClickHouse } from '../lib/clients/clickhouse';
import { config, type Config } from '../lib/config';
import { percentile, runFleet } from '../lib/load/fleet';
import { migrateClickHouse } from '../lib/migrate/clickhouse';
import { generateDataset, generateTicks } from '../lib/seed/generate';
import { TICK_COLUMNS, TsvRows } from '../lib/seed/load';
import { scratchDatabases, scratchTickPipeline } from '../stack/scratch';
import { Registry } from 'prom-client';
import { createPostgresPool } from '../lib/clients/postgres';
import { logger } from '../lib/logger';
import { PlayTickProducer } from '../lib/play-tick-producer';
import { PlayTickSink } from '../workers/sink/sink';
import { SuppressionList } from '../workers/sink/suppressions';
import { summary } from './report';

/**
 * npm run bench:play-ticks -- [--rate 50000] [--duration 60] [--sink-only]
 * Against the running API and sink (npm run up): end-to-end ticks/s through API → Kafka → ClickHouse,
 * the sink's rows/s under that load (from its metrics) and alone (draining a preloaded scratch topic), tick-to-queryable latency for a sample of ticks, and the
 * raw ClickHouse insert ceiling (same table and views, bulk TabSeparated and RowBinary; the higher counts)
 * measured in the same run.
 * Targets: ≥ 100,000 ticks/s end to end; sink ≥ 50 % of the raw ceiling; p99 tick-to-queryable ≤ 2 s.
 * --sink-only measures the sink alone and the ceiling, with no API or running sink needed.
 */
async function sinkRows(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(/^cadenza_sink_rows_total (\d+)/m.exec(text)?.[1] ?? NaN);
}

/**
 * Waits until the running sink has nothing left to drain (its row count still for 3 s): a backlog from
 * before the bench (ticks sent while the sink was down) would otherwise count as latency of the load.
 */
async function sinkSettled(port: number): Promise<number> {
  let last = await sinkRows(port);
  let still = 0;
  for (const deadline = Date.now() + 600_000; still < 3 && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = await sinkRows(port);
    still = now === last ? still + 1 : 0;
    if (now !== last) process.stdout.write(`waiting for the sink to drain its backlog (${now} rows)\n`);
    last = now;
  }
  return last;
}

/**
 * The sink alone: a scratch topic preloaded with about a million ticks (as the API's producer writes
 * them), then a sink of the bench's own (same code and settings as the process) drains it into a
 * scratch ClickHouse database; rows/s from its first row to its last.
 */
async function sinkOnlyRowsPerS(cfg: Config): Promise<number> {
  const pipe = await scratchTickPipeline(cfg, 'bench', 6);
  const pool = await createPostgresPool(pipe.config.postgres, 2);
  const clickhouse = createClickHouse(pipe.config.clickhouse);
  try {
    const producer = new PlayTickProducer(pipe.kafka, 120_000, pipe.topics.ticks);
    const opts = { scale: 'small' as const, seed: 11, now: new Date(), plays: 80_000 };
    const ticks = [...generateTicks(generateDataset(opts), opts)];
    for (let i = 0; i < ticks.length; i += 20_000) await producer.publish(ticks.slice(i, i + 20_000));
    await producer.close();
    const suppressions = new SuppressionList(pool);
    await suppressions.start();
    const registry = new Registry();
    const sink = new PlayTickSink(
      pipe.kafka,
      clickhouse,
      suppressions,
      logger.child({ component: 'bench-sink' }),
      { ...cfg.sink, groupId: `bench-sink-${pipe.id}`, topics: pipe.topics },
      registry,
    );
    const rows = async () =>
      (await registry.getSingleMetric('cadenza_sink_rows_total')?.get())?.values[0]?.value ?? 0;
    await sink.start();
    let first = 0;
    const deadline = Date.now() + 300_000;
    while ((await rows()) < ticks.length && Date.now() < deadline) {
      if (!first && (await rows()) > 0) first = performance.now();
      await new Promise((r) => setTimeout(r, 20));
    }
    const done = await rows();
    const seconds = (performance.now() - first) / 1000;
    await sink.stop();
    suppressions.stop();
    process.stdout.write(`sink alone: ${done} rows in ${seconds.toFixed(1)} s\n`);
    return done / seconds;
  } finally {
    await Promise.allSettled([clickhouse.close(), pool.end()]);
    await pipe.drop();
  }
}

/**
 * The raw ceiling: the same table and views in a scratch database, one bulk insert of a million rows,
 * in TabSeparated and in RowBinary (the sink's format), each into a fresh database. The higher is the
 * ceiling the sink is compared with.
 */
async function rawCeilingRowsPerS(cfg: Config): Promise<{ tsv: number; rowBinary: number }> {
  const opts = { scale: 'small' as const, seed: 5, now: new Date(), plays: 80_000 };
  const tsv = new TsvRows(1_000_000);
  const binary = new TickRows(1_000_000, false);
  for (const t of generateTicks(generateDataset(opts), opts)) {
    tsv.add(t);
    binary.add(t);
  }
  const insertInto = async (insert: (client: ClickHouseClient) => Promise<unknown>) => {
    const db = await scratchDatabases(cfg);
    try {
      await migrateClickHouse(db.config.clickhouse);
      const scratch = createClickHouse(db.config.clickhouse);
      const t0 = performance.now();
      await insert(scratch);
      const perS = tsv.count / ((performance.now() - t0) / 1000);
      await scratch.close();
      return perS;
    } finally {
      await db.drop();
    }
  };
  const tsvPerS = await insertInto((c) =>
    c.insert({
      table: 'play_ticks',
      values: Readable.from([tsv.bytes()], { objectMode: false }),
      format: 'TabSeparated',
      columns: TICK_COLUMNS,
    }),
  );
  const rowBinaryPerS = await insertInto(async (c) => {
    const { stream } = await c.exec({
      query: `INSERT INTO play_ticks (${ROW_COLUMNS.join(', ')}) FORMAT RowBinary`,
      values: Readable.from([binary.bytes()], { objectMode: false }),
    });
    stream.resume();
    await finished(stream);
  });
  process.stdout.write(
    `raw ceiling: TabSeparated ${Math.round(tsvPerS)} rows/s, RowBinary ${Math.round(rowBinaryPerS)} rows/s\n`,
  );
  return { tsv: tsvPerS, rowBinary: rowBinaryPerS };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '50000' },
      duration: { type: 'string', default: '60' },
      // The sink alone and the ceiling, without the API and the running sink (for tuning the sink).
      'sink-only': { type: 'boolean', default: false },
    },
  });
  const cfg = config();
  if (values['sink-only']) {
    const sinkOnly = await sinkOnlyRowsPerS(cfg);
    const ceilings = await rawCeilingRowsPerS(cfg);
    const ceiling = Math.max(ceilings.tsv, ceilings.rowBinary);
    summary('play-ticks-sink', {
      sink_threads: cfg.sink.threads,
      sink_only_rows_per_s: sinkOnly,
      clickhouse_raw_ceiling_rows_per_s: ceiling,
      ceiling_tsv_rows_per_s: ceilings.tsv,
      ceiling_rowbinary_rows_per_s: ceilings.rowBinary,
      sink_share_of_ceiling: sinkOnly / ceiling,
      target_sink_half_ceiling: sinkOnly >= ceiling / 2 ? 'met' : 'missed',
    });
    return;
  }
  const url = `http://${cfg.api.host}:${cfg.api.port}`;
  if (!(await fetch(`${url}/healthz`).catch(() => undefined))?.ok)
    throw new Error(`no API at ${url}: start it with npm run up`);
  if (Number.isNaN(await sinkRows(cfg.sink.healthPort).catch(() => NaN)))
    throw new Error('no sink metrics: start it with npm run up');
  const rowsBefore = await sinkSettled(cfg.sink.healthPort);
  const client = createClickHouse(cfg.clickhouse);
  const token = await mintDevToken(cfg.auth, {
    sub: 'bench-play-ticks',
    scopes: ['service'],
    ttlSeconds: 3600,
  });

  // Tick-to-queryable: every 500th accepted tick is watched until a query finds it.
  const watched = new Map<string, number>();
  const latencies: number[] = [];
  let watching = true;
  const poller = (async () => {
    while (watching || watched.size) {
      const ids = [...watched.keys()].slice(0, 500);
      if (ids.length) {
        const found = await (
          await client.query({
            query: ch`SELECT DISTINCT toString(event_id) AS id FROM play_ticks WHERE event_id IN (${join(
              ids.map((i) => ch`toUUID(${i})`),
              ', ',
            )})`.text,
            format: 'JSONEachRow',
          })
        ).json<{ id: string }>();
        const now = Date.now();
        for (const { id } of found) {
          const sentAt = watched.get(id);
          if (sentAt === undefined) continue;
          latencies.push(now - sentAt);
          watched.delete(id);
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  let n = 0;
  const started = Date.now();
  const report = await runFleet({
    url,
    token,
    rate: Number(values.rate),
    durationS: Number(values.duration),
    users: 50_000,
    concurrency: 12,
    onAccepted: (ticks) => {
      for (const t of ticks) if (n++ % 500 === 0) watched.set(t.event_id, Date.now());
    },
  });
  const loadSeconds = (Date.now() - started) / 1000;
  watching = false;
  const drainDeadline = Date.now() + 120_000;
  while (watched.size && Date.now() < drainDeadline) await new Promise((r) => setTimeout(r, 200));
  const lost = watched.size;
  watched.clear();
  await poller;
  const sinkSeconds = (Date.now() - started) / 1000;
  const rowsAfter = await sinkRows(cfg.sink.healthPort);

  const sinkOnly = await sinkOnlyRowsPerS(cfg);

  const ceilings = await rawCeilingRowsPerS(cfg);
  const ceiling = Math.max(ceilings.tsv, ceilings.rowBinary);
  await client.close();

  const e2e = report.accepted / loadSeconds;
  const sinkUnderLoad = (rowsAfter - rowsBefore) / sinkSeconds;
  summary('play-ticks', {
    offered_rate_per_s: Number(values.rate),
    accepted: report.accepted,
    failed_requests: report.failedRequests,
    e2e_ticks_per_s: e2e,
    request_p99_ms: percentile(report.latenciesMs, 99),
    sink_rows_per_s_under_load: sinkUnderLoad,
    sink_threads: cfg.sink.threads,
    sink_only_rows_per_s: sinkOnly,
    clickhouse_raw_ceiling_rows_per_s: ceiling,
    ceiling_tsv_rows_per_s: ceilings.tsv,
    ceiling_rowbinary_rows_per_s: ceilings.rowBinary,
    sink_share_of_ceiling: sinkOnly / ceiling,
    queryable_p50_ms: percentile(latencies, 50),
    queryable_p99_ms: percentile(latencies, 99),
    sampled_not_found: lost,
    target_100k_e2e: e2e >= 100_000 ? 'met' : 'missed',
    target_sink_half_ceiling: sinkOnly >= ceiling / 2 ? 'met' : 'missed',
    target_p99_2s: percentile(latencies, 99) <= 2000 ? 'met' : 'missed',
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
