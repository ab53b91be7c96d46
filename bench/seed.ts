import { parseArgs } from 'node:util';
import { createClickHouse } from '../lib/clients/clickhouse';
import { config } from '../lib/config';
import { migrateClickHouse } from '../sql/migrate/clickhouse';
import { migratePostgres } from '../sql/migrate/postgres';
import { runSeed } from '../scripts/seed/run';
import { scratchDatabases } from '../stack/scratch';
import { summary } from './report';

/**
 * npm run bench:seed -- [--plays 400000] [--kafka-plays 20000]
 * Rows/s into each store from the seed generator, in scratch databases: PostgreSQL (the entities),
 * ClickHouse (bulk-loaded ticks; 400,000 plays ≈ 10.9 million ticks), Kafka (ticks produced like
 * production traffic). Target: 10 million ticks into ClickHouse in ≤ 60 s.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      plays: { type: 'string', default: '400000' },
      'kafka-plays': { type: 'string', default: '20000' },
    },
  });
  const base = config();
  const db = await scratchDatabases(base);
  try {
    await migratePostgres(db.config.postgres);
    await migrateClickHouse(db.config.clickhouse);
    const now = new Date();
    const ch = await runSeed(db.config, {
      scale: 'small',
      seed: 1,
      now,
      plays: Number(values.plays),
      via: 'clickhouse',
      progress: true,
    });
    const ticksSeconds = ch.ticks / ch.tickRowsPerSecond;
    process.stdout.write(
      `clickhouse: ${ch.ticks} ticks in ${ticksSeconds.toFixed(1)} s (generation included)\n`,
    );

    // The same kind of load through Kafka, into a second scratch pair (the topic is the real one; the
    // sink, when running, loads these ticks into the main database, which is harmless: they are synthetic).
    const db2 = await scratchDatabases(base);
    let kafka;
    try {
      await migratePostgres(db2.config.postgres);
      await migrateClickHouse(db2.config.clickhouse);
      kafka = await runSeed(db2.config, {
        scale: 'small',
        seed: 2,
        now,
        plays: Number(values['kafka-plays']),
        via: 'kafka',
      });
    } finally {
      await db2.drop();
    }
    const client = createClickHouse(db.config.clickhouse);
    const [row] = await (
      await client.query({ query: 'SELECT uniqExact(event_id) AS n FROM play_ticks', format: 'JSONEachRow' })
    ).json<{ n: string }>();
    await client.close();
    summary('seed', {
      postgres_rows: ch.postgres.rows,
      postgres_rows_per_s: ch.postgres.rows / ch.postgres.seconds,
      clickhouse_ticks: ch.ticks,
      clickhouse_ticks_in_table: Number(row?.n),
      clickhouse_seconds: ticksSeconds,
      clickhouse_rows_per_s: ch.tickRowsPerSecond,
      seconds_per_10M: 10_000_000 / ch.tickRowsPerSecond,
      kafka_ticks: kafka.ticks,
      kafka_rows_per_s: kafka.tickRowsPerSecond,
      target_10M_in_60s: 10_000_000 / ch.tickRowsPerSecond <= 60 ? 'met' : 'missed',
    });
  } finally {
    await db.drop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
