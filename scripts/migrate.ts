import { createKafka } from '../lib/clients/kafka';
import { createMinio } from '../lib/clients/minio';
import { createOpenSearch, SEARCH_VERSION } from '../lib/clients/opensearch';
import { config } from '../lib/config';
import { migrateClickHouse } from '../sql/migrate/clickhouse';
import { migrateKafka } from '../sql/migrate/kafka';
import { migrateMinio } from '../sql/migrate/minio';
import { migrateOpenSearch, searchIndicesBehind } from '../sql/migrate/opensearch';
import { migratePostgres } from '../sql/migrate/postgres';
import { createPostgresPool } from '../lib/clients/postgres';
import { rebuildSearch } from '../activities/catalog/reindex';

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
    const prefix = cfg.opensearch.indexPrefix;
    report('opensearch', await migrateOpenSearch(opensearch, SEARCH_VERSION, prefix));
    // Aliases on an older mapping are rebuilt from PostgreSQL beside the old index and swapped (the same
    // steps as the reindexSearch workflow): searches keep working throughout.
    if ((await searchIndicesBehind(opensearch, SEARCH_VERSION, prefix)).length) {
      const pool = await createPostgresPool(cfg.postgres, 2);
      try {
        const moves = await rebuildSearch({ pool, opensearch, indexPrefix: prefix }, SEARCH_VERSION);
        report(
          'opensearch',
          moves.map((m) => `${m.alias}: ${m.from} → ${m.to} (rebuilt)`),
        );
      } finally {
        await pool.end();
      }
    }
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
