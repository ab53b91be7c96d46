import { parseArgs } from 'node:util';
import { MultiBar, Presets } from 'cli-progress';
import { sql } from 'slonik';
import { refreshDimensions } from '../activities/analytics/dimensions';
import { createClickHouse } from '../lib/clients/clickhouse';
import { createKafka } from '../lib/clients/kafka';
import { createPostgresPool } from '../lib/clients/postgres';
import { config } from '../lib/config';
import { generateDataset, generateTicks, SCALES, type ScaleName } from '../lib/seed/generate';
import { insertRows, insertSeedSettlement, loadTicksToClickHouse, POSTGRES_TABLES, produceTicks } from '../lib/seed/load';
import { SettlementAccumulator, tap } from '../lib/seed/settlement';

const usage = `usage: npm run seed -- [--scale small|medium|large] [--plays N] [--seed S] [--now ISO] [--via kafka|clickhouse] [--if-empty]
  small scales send their ticks through Kafka like production traffic (the sink loads them);
  medium and large bulk-load ClickHouse directly. --if-empty does nothing when users exist.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string', default: 'small' },
      plays: { type: 'string' },
      seed: { type: 'string', default: '42' },
      now: { type: 'string' },
      via: { type: 'string' },
      'if-empty': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void process.stdout.write(`${usage}\n`);
  if (!(values.scale in SCALES)) throw new Error(`--scale must be one of ${Object.keys(SCALES).join(', ')}\n${usage}`);
  const scale = values.scale as ScaleName;
  const seed = Number(values.seed);
  const plays = values.plays === undefined ? undefined : Number(values.plays);
  if (!Number.isInteger(seed) || (plays !== undefined && !(Number.isInteger(plays) && plays >= 0))) throw new Error(`--seed and --plays take integers\n${usage}`);
  const now = values.now ? new Date(values.now) : new Date();
  if (Number.isNaN(now.getTime())) throw new Error('--now takes an ISO-8601 time');
  const via = values.via ?? (scale === 'small' ? 'kafka' : 'clickhouse');
  if (via !== 'kafka' && via !== 'clickhouse') throw new Error('--via takes kafka or clickhouse');

  const cfg = config();
  const pool = await createPostgresPool(cfg.postgres, 4);
  const clickhouse = createClickHouse(cfg.clickhouse);
  try {
    if (values['if-empty'] && (await pool.oneFirst(sql.unsafe`SELECT count(*)::int FROM users`)) > 0) {
      process.stdout.write('seed: the database already has users; leaving it as it is\n');
      return;
    }
    const opts = { scale, seed, now, plays };
    const data = generateDataset(opts);
    const bars = new MultiBar(
      { format: ' {name} |{bar}| {value}/{total} {rate}', hideCursor: true, noTTYOutput: true, notTTYSchedule: 60_000 },
      Presets.shades_classic,
    );
    const started = Date.now();
    for (const t of POSTGRES_TABLES) {
      const rows = t.rows(data);
      const bar = bars.create(rows.length, 0, { name: t.table.padEnd(16), rate: '' });
      await insertRows(pool, t.table, t.columns, rows, (n) => bar.increment(n));
    }
    const dims = await refreshDimensions(pool, clickhouse);
    const expected = [...generateTicks(data, opts)].length;
    const tickBar = bars.create(expected, 0, { name: `ticks → ${via}`.padEnd(16), rate: '' });
    const tickStart = Date.now();
    const onRows = (n: number) => tickBar.increment(n, { rate: `${Math.round(tickBar.getProgress() * expected / Math.max(0.001, (Date.now() - tickStart) / 1000))} rows/s` });
    const settlement = new SettlementAccumulator();
    const ticks = () => tap(generateTicks(data, opts), (t) => settlement.observe(t));
    let sent: number;
    if (via === 'kafka') {
      const producer = createKafka(cfg.kafka, 'cadenza-seed').producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      try {
        sent = await produceTicks(producer, ticks(), onRows);
      } finally {
        await producer.disconnect();
      }
    } else {
      sent = await loadTicksToClickHouse(clickhouse, ticks(), onRows);
    }
    bars.stop();
    const settled = settlement.settle(data, now);
    await insertSeedSettlement(pool, settled, now);
    process.stdout.write(
      `seed: scale=${scale} seed=${seed} users=${data.users.length} tracks=${data.tracks.length} dims=${dims.tracks}/${dims.users}/${dims.campaigns} ticks=${sent} via=${via} seconds=${((Date.now() - started) / 1000).toFixed(1)}\n`,
    );
  } finally {
    await Promise.allSettled([pool.end(), clickhouse.close()]);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`seed failed: ${err.message}\n`);
  process.exit(1);
});
