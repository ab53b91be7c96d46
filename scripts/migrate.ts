import { createKafka } from '../lib/clients/kafka';
import { createMinio } from '../lib/clients/minio';
import { createOpenSearch } from '../lib/clients/opensearch';
import { config } from '../lib/config';
import { migrateClickHouse } from '../sql/migrate/clickhouse';
import { migrateKafka } from '../sql/migrate/kafka';
import { migrateMinio } from '../sql/migrate/minio';
import { migrateOpenSearch } from '../sql/migrate/opensearch';
import { migratePostgres } from '../sql/migrate/postgres';

/** npm run migrate: brings every store to the current schema from empty; a no-op when run again. */
async function main(): Promise<void> {
  const cfg = config();
  const report = (store: string, applied: string[]) =>
    process.stdout.write(
      `${store.padEnd(11)} ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}\n`,
    );

  report('postgres', await migratePostgres(cfg.postgres));
  report('clickhouse', await migrateClickHouse(cfg.clickhouse));
  const opensearch = createOpenSearch(cfg.opensearch);
  try {
    report('opensearch', await migrateOpenSearch(opensearch, 1, cfg.opensearch.indexPrefix));
  } finally {
    await opensearch.close();
  }
  report('minio', await migrateMinio(createMinio(cfg.minio), { prefix: cfg.minio.bucketPrefix }));
  report('kafka', await migrateKafka(createKafka(cfg.kafka, 'cadenza-migrate'), cfg.kafka));
}

main().catch((err: Error) => {
  process.stderr.write(`migration failed: ${err.message}\n`);
  process.exit(1);
});
