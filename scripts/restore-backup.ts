import { parseArgs } from 'node:util';
import { latestBackupId, readBackupManifest } from '../activities/ops/backups';
import { restoreClickHouse } from '../activities/ops/backups/clickhouse';
import { restoreOpenSearch } from '../activities/ops/backups/opensearch';
import { restorePostgres } from '../activities/ops/backups/postgres';
import { createMinio, bucketName } from '../lib/clients/minio';
import { createOpenSearch } from '../lib/clients/opensearch';
import { createPostgresPool } from '../lib/clients/postgres';
import { config } from '../lib/config';

/**
 * npm run restore -- [--backup 2026-11-30T0300Z] [--stores postgres,clickhouse,opensearch]
 *
 * Restores a backup (the latest completed one by default) NEXT TO the live data, never over it: PostgreSQL
 * into a new database `<db>_restored_<backup>`, ClickHouse into a new database of the same name, OpenSearch
 * into indices prefixed `restored-<backup>-`. Each is compared with the counts and checksums the backup
 * recorded, like the drill. Switching the system over to them is a person's step (docs/runbook.md).
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      backup: { type: 'string' },
      stores: { type: 'string', default: 'postgres,clickhouse,opensearch' },
    },
  });
  const cfg = config();
  const pool = await createPostgresPool(cfg.postgres, 2);
  const opensearch = createOpenSearch(cfg.opensearch);
  const minio = createMinio(cfg.minio);
  const stores = new Set(values.stores.split(','));
  try {
    const backupId = values.backup ?? (await latestBackupId(pool));
    if (!backupId) throw new Error('there is no completed backup (table backups)');
    const manifest = await readBackupManifest({ pool, minio, config: cfg }, backupId);
    const bucket = bucketName('backups', cfg.minio.bucketPrefix);
    const suffix = backupId.toLowerCase().replace(/[^a-z0-9]/g, '');
    const deps = { pool, minio, opensearch, config: cfg };
    const say = (store: string, where: string, r: { checks: number; failures: unknown[] }) =>
      process.stdout.write(
        `${store.padEnd(11)} → ${where}: ${r.checks} checks, ${r.failures.length ? `FAILED ${JSON.stringify(r.failures)}` : 'as the source had it'}\n`,
      );
    process.stdout.write(`restoring backup ${backupId} (completed ${manifest.completedAt})\n`);
    if (stores.has('postgres')) {
      const target = `${cfg.postgres.database}_restored_${suffix}`;
      say(
        'postgres',
        `database ${target}`,
        await restorePostgres(deps, bucket, manifest.postgres, { target, keep: true }),
      );
    }
    if (stores.has('clickhouse')) {
      const target = `${cfg.clickhouse.database}_restored_${suffix}`;
      say(
        'clickhouse',
        `database ${target}`,
        await restoreClickHouse(deps, bucket, manifest.clickhouse, { target, keep: true }),
      );
    }
    if (stores.has('opensearch')) {
      const prefix = `restored-${suffix}-`;
      say(
        'opensearch',
        `indices ${prefix}*`,
        await restoreOpenSearch(deps, bucket, manifest.opensearch, { prefix, keep: true }),
      );
    }
  } finally {
    await Promise.allSettled([pool.end(), opensearch.close()]);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`restore failed: ${err.message}\n`);
  process.exit(1);
});
