import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { mintDevToken } from '../lib/auth/dev-issuer';
import { ch, join } from '../lib/clickhouse-sql';
import { createClickHouse } from '../lib/clients/clickhouse';
import { config } from '../lib/config';
import { percentile, runFleet } from '../lib/load/fleet';
import { migrateClickHouse } from '../lib/migrate/clickhouse';
import { generateDataset, generateTicks } from '../lib/seed/generate';
import { TICK_COLUMNS, tsvLine } from '../lib/seed/load';
import { scratchDatabases } from '../stack/scratch';
import { summary } from './report';

/**
 * npm run bench:play-ticks -- [--rate 50000] [--duration 60]
 * Against the running API and sink (npm run up): end-to-end ticks/s through API → Kafka → ClickHouse,
 * the sink's own rows/s (from its metrics), tick-to-queryable latency for a sample of ticks, and the
 * raw ClickHouse insert ceiling (same table and views, bulk TabSeparated) measured in the same run.
 * Targets: ≥ 100,000 ticks/s end to end; sink ≥ 50 % of the raw ceiling; p99 tick-to-queryable ≤ 2 s.
 */
async function sinkRows(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(/^cadenza_sink_rows_total (\d+)/m.exec(text)?.[1] ?? NaN);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rate: { type: 'string', default: '50000' }, duration: { type: 'string', default: '60' } },
  });
  const cfg = config();
  const url = `http://${cfg.api.host}:${cfg.api.port}`;
  if (!(await fetch(`${url}/healthz`).catch(() => undefined))?.ok)
    throw new Error(`no API at ${url}: start it with npm run up`);
  const rowsBefore = await sinkRows(cfg.sink.healthPort).catch(() => NaN);
  if (Number.isNaN(rowsBefore)) throw new Error('no sink metrics: start it with npm run up');
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
            query: ch`SELECT toString(event_id) AS id FROM play_ticks WHERE event_id IN (${join(
              ids.map((i) => ch`toUUID(${i})`),
              ', ',
            )})`.text,
            format: 'JSONEachRow',
          })
        ).json<{ id: string }>();
        const now = Date.now();
        for (const { id } of found) {
          latencies.push(now - (watched.get(id) as number));
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

  // The raw ceiling: the same table and views in a scratch database, one bulk TabSeparated insert.
  const db = await scratchDatabases(cfg);
  let ceiling = NaN;
  try {
    await migrateClickHouse(db.config.clickhouse);
    const scratch = createClickHouse(db.config.clickhouse);
    const opts = { scale: 'small' as const, seed: 5, now: new Date(), plays: 80_000 };
    const lines: string[] = [];
    for (const t of generateTicks(generateDataset(opts), opts)) lines.push(tsvLine(t));
    const t0 = performance.now();
    await scratch.insert({
      table: 'play_ticks',
      values: Readable.from([lines.join('')], { objectMode: false }),
      format: 'TabSeparated',
      columns: TICK_COLUMNS,
    });
    ceiling = lines.length / ((performance.now() - t0) / 1000);
    await scratch.close();
  } finally {
    await db.drop();
  }
  await client.close();

  const e2e = report.accepted / loadSeconds;
  const sink = (rowsAfter - rowsBefore) / sinkSeconds;
  summary('play-ticks', {
    offered_rate_per_s: Number(values.rate),
    accepted: report.accepted,
    failed_requests: report.failedRequests,
    e2e_ticks_per_s: e2e,
    request_p99_ms: percentile(report.latenciesMs, 99),
    sink_rows_per_s: sink,
    clickhouse_raw_ceiling_rows_per_s: ceiling,
    sink_share_of_ceiling: sink / ceiling,
    queryable_p50_ms: percentile(latencies, 50),
    queryable_p99_ms: percentile(latencies, 99),
    sampled_not_found: lost,
    target_100k_e2e: e2e >= 100_000 ? 'met' : 'missed',
    target_sink_half_ceiling: sink >= ceiling / 2 ? 'met' : 'missed',
    target_p99_2s: percentile(latencies, 99) <= 2000 ? 'met' : 'missed',
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
