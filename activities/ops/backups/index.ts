import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { sql } from 'slonik';
import { z } from 'zod';
import { bucketName } from '../../../lib/clients/minio';
import {
  BACKUP_ID,
  OpsFailure,
  type BackupResult,
  type DrillFailure,
  type RestoreDrillResult,
} from '../../../workflows/ops/contract';
import type { OpsDeps } from '../deps';
import { backupClickHouse, restoreClickHouse, type ClickHouseBackup } from './clickhouse';
import { listKeys, putSmallObject, readSmallObject, type StoredObject } from './objects';
import { backupOpenSearch, restoreOpenSearch, type OpenSearchBackup } from './opensearch';
import { backupPostgres, drillDatabase, restorePostgres, type PostgresBackup } from './postgres';

/** Scratch search indices of a drill: lower case, as OpenSearch requires. */
const drillIndexPrefix = (drillId: string) => drillId.toLowerCase().replace(/[^a-z0-9-]/g, '-');

/**
 * Backups into the `backups` bucket, one folder per backup (`<backupId>/…`), and the restore drill. A backup
 * is complete when its manifest is written — every object with its size and SHA-256 and the source's counts
 * and checksums — and its catalogue row (table `backups`) says so; the drill trusts nothing else.
 */

export interface BackupManifest {
  format: 1;
  backupId: string;
  completedAt: string;
  postgres: PostgresBackup;
  clickhouse: ClickHouseBackup;
  opensearch: OpenSearchBackup;
}

const BackupRow = z.object({
  backup_id: z.string(),
  manifest_key: z.string(),
  manifest_sha256: z.string().nullable(),
});
const Key = z.object({ backup_id: z.string() });

const manifestKey = (backupId: string) => `${backupId}/manifest.json`;

function objectsOf(m: Omit<BackupManifest, 'format' | 'completedAt'>): StoredObject[] {
  return [
    m.postgres.object,
    ...m.clickhouse.tables.flatMap((t) => (t.data ? [t.ddl, t.data] : [t.ddl])),
    ...m.opensearch.indices.map((i) => i.object),
  ];
}

/** The manifest of a completed backup, checked against the SHA-256 its catalogue row holds. */
export async function readBackupManifest(
  deps: Pick<OpsDeps, 'pool' | 'minio' | 'config'>,
  backupId: string,
): Promise<BackupManifest> {
  const row = await deps.pool.maybeOne(sql.type(BackupRow)`
    SELECT backup_id, manifest_key, manifest_sha256 FROM backups
    WHERE backup_id = ${backupId} AND status = 'completed'`);
  if (!row)
    throw ApplicationFailure.nonRetryable(`no completed backup ${backupId}`, OpsFailure.BackupNotFound);
  const text = await readSmallObject(
    deps.minio,
    bucketName('backups', deps.config.minio.bucketPrefix),
    row.manifest_key,
  );
  const sha = createHash('sha256').update(text).digest('hex');
  if (sha !== row.manifest_sha256) throw new ManifestDamaged(row.manifest_key);
  return JSON.parse(text.toString('utf8')) as BackupManifest;
}

/** The latest completed backup's ID, if there is one. */
export async function latestBackupId(pool: OpsDeps['pool']): Promise<string | null> {
  return pool.maybeOneFirst(sql.type(Key)`
    SELECT backup_id FROM backups WHERE status = 'completed' ORDER BY completed_at DESC LIMIT 1`);
}

export function createBackupActivities(deps: OpsDeps) {
  const { pool, minio, config } = deps;
  const bucket = bucketName('backups', config.minio.bucketPrefix);
  const checkId = (backupId: string) => {
    if (!BACKUP_ID.test(backupId))
      throw ApplicationFailure.nonRetryable(
        `backup ID ${JSON.stringify(backupId)} is not a minute in UTC such as 2026-11-30T0300Z`,
        OpsFailure.BackupNotFound,
      );
  };

  const readManifest = (backupId: string) => readBackupManifest(deps, backupId);

  return {
    async beginBackup(i: { backupId: string }): Promise<void> {
      checkId(i.backupId);
      await pool.query(sql.unsafe`
        INSERT INTO backups (backup_id, status, bucket, manifest_key)
        VALUES (${i.backupId}, 'running', ${bucket}, ${manifestKey(i.backupId)})
        ON CONFLICT (backup_id) DO UPDATE SET status = 'running', started_at = now()
        WHERE backups.status = 'failed'`);
    },

    /** pg_dump of the whole database, streamed, with the counts and checksums of its snapshot. */
    async backupPostgres(i: { backupId: string }): Promise<PostgresBackup> {
      return backupPostgres(deps, bucket, i.backupId);
    },

    async backupClickHouse(i: { backupId: string }): Promise<ClickHouseBackup> {
      return backupClickHouse(deps, bucket, i.backupId);
    },

    async backupOpenSearch(i: { backupId: string }): Promise<OpenSearchBackup> {
      return backupOpenSearch(deps, bucket, i.backupId);
    },

    /** Writes the manifest last: from now on the backup exists for the drill and for restores. */
    async completeBackup(i: {
      backupId: string;
      postgres: PostgresBackup;
      clickhouse: ClickHouseBackup;
      opensearch: OpenSearchBackup;
    }): Promise<Omit<BackupResult, 'expired'>> {
      const manifest: BackupManifest = { format: 1, completedAt: new Date().toISOString(), ...i };
      const written = await putSmallObject(
        minio,
        bucket,
        manifestKey(i.backupId),
        JSON.stringify(manifest, null, 1),
      );
      const objects = objectsOf(i);
      const bytes = objects.reduce((n, o) => n + o.bytes, written.bytes);
      await pool.query(sql.unsafe`
        UPDATE backups SET status = 'completed', completed_at = now(), manifest_sha256 = ${written.sha256},
          bytes = ${bytes},
          summary = ${sql.jsonb({
            postgresTables: Object.keys(i.postgres.tables).length,
            clickhouseTables: i.clickhouse.tables.length,
            inconsistentClickHouseTables: i.clickhouse.tables.filter((t) => !t.consistent).map((t) => t.name),
            opensearchIndices: i.opensearch.indices.length,
          })}
        WHERE backup_id = ${i.backupId}`);
      return { backupId: i.backupId, manifestKey: written.key, bytes, objects: objects.length + 1 };
    },

    async markBackupFailed(i: { backupId: string; reason: string }): Promise<void> {
      await pool.query(sql.unsafe`
        UPDATE backups SET status = 'failed', summary = summary || ${sql.jsonb({ reason: i.reason.slice(0, 1000) })}
        WHERE backup_id = ${i.backupId} AND status = 'running'`);
    },

    /**
     * Retention: completed backups older than `retentionDays` are deleted (objects) and marked expired, except
     * the newest `keepAtLeast`; failed and abandoned ones past retention lose their partial objects.
     */
    async expireBackups(i: { retentionDays: number; keepAtLeast: number; asOf: string }): Promise<string[]> {
      const doomed = await pool.anyFirst(sql.type(Key)`
        SELECT backup_id FROM backups b
        WHERE b.status IN ('completed', 'failed', 'running')
          AND b.started_at < ${i.asOf}::timestamptz - make_interval(days => ${i.retentionDays})
          AND b.backup_id NOT IN (
            SELECT backup_id FROM backups WHERE status = 'completed'
            ORDER BY completed_at DESC LIMIT ${i.keepAtLeast})
        ORDER BY backup_id`);
      for (const id of doomed) {
        const keys = await listKeys(minio, bucket, `${id}/`);
        if (keys.length) await minio.removeObjects(bucket, keys);
        await pool.query(sql.unsafe`
          UPDATE backups SET status = CASE WHEN status = 'completed' THEN 'expired' ELSE status END,
            expired_at = now()
          WHERE backup_id = ${id}`);
      }
      return [...doomed];
    },

    /**
     * Starts a drill's record on the given backup or the latest completed one, and checks its manifest.
     * `problem` says why there is nothing to restore: no completed backup, or a manifest that is damaged.
     */
    async beginRestoreDrill(i: {
      drillId: string;
      backupId?: string;
    }): Promise<{ backupId: string | null; problem: DrillFailure | null }> {
      if (i.backupId) {
        checkId(i.backupId);
        const known = await pool.maybeOneFirst(sql.type(Key)`
          SELECT backup_id FROM backups WHERE backup_id = ${i.backupId} AND status = 'completed'`);
        if (!known)
          throw ApplicationFailure.nonRetryable(
            `there is no completed backup ${i.backupId} (see the backups table, or leave it out for the latest)`,
            OpsFailure.BackupNotFound,
          );
      }
      const backupId = i.backupId ?? (await latestBackupId(pool));
      await pool.query(sql.unsafe`
        INSERT INTO restore_drills (drill_id, backup_id, status) VALUES (${i.drillId}, ${backupId}, 'running')
        ON CONFLICT (drill_id) DO UPDATE SET backup_id = EXCLUDED.backup_id, status = 'running',
          started_at = now(), finished_at = NULL, checks = 0, failures = '[]'`);
      if (!backupId)
        return {
          backupId,
          problem: { store: 'manifest', object: bucket, reason: 'there is no completed backup to restore' },
        };
      try {
        await readManifest(backupId);
      } catch (err) {
        if (!(err instanceof ManifestDamaged)) throw err;
        return { backupId, problem: { store: 'manifest', object: err.key, reason: err.message } };
      }
      return { backupId, problem: null };
    },

    async restorePostgresBackup(i: { drillId: string; backupId: string }): Promise<Outcome> {
      return withManifest(i.backupId, (m) =>
        restorePostgres(deps, bucket, m.postgres, { target: drillDatabase(i.drillId) }),
      );
    },
    async restoreClickHouseBackup(i: { drillId: string; backupId: string }): Promise<Outcome> {
      return withManifest(i.backupId, (m) =>
        restoreClickHouse(deps, bucket, m.clickhouse, { target: drillDatabase(i.drillId) }),
      );
    },
    async restoreOpenSearchBackup(i: { drillId: string; backupId: string }): Promise<Outcome> {
      return withManifest(i.backupId, (m) =>
        restoreOpenSearch(deps, bucket, m.opensearch, { prefix: `${drillIndexPrefix(i.drillId)}-` }),
      );
    },

    /** A drill that ended without a verdict (canceled, or its run failed): not a failed drill. */
    async abandonRestoreDrill(i: { drillId: string; reason: string }): Promise<void> {
      await pool.query(sql.unsafe`
        UPDATE restore_drills SET status = 'canceled', finished_at = now(),
          failures = ${sql.jsonb([{ store: 'manifest', object: '', reason: i.reason.slice(0, 1000) }])}
        WHERE drill_id = ${i.drillId} AND status = 'running'`);
    },

    async finishRestoreDrill(i: {
      drillId: string;
      backupId: string | null;
      checks: number;
      failures: DrillFailure[];
    }): Promise<RestoreDrillResult> {
      const status = i.failures.length ? 'failed' : 'passed';
      await pool.query(sql.unsafe`
        UPDATE restore_drills SET status = ${status}, finished_at = now(), checks = ${i.checks},
          failures = ${sql.jsonb(i.failures as unknown as Parameters<typeof sql.jsonb>[0])}
        WHERE drill_id = ${i.drillId}`);
      return {
        drillId: i.drillId,
        backupId: i.backupId ?? '',
        status,
        checks: i.checks,
        failures: i.failures,
      };
    },
  };

  /** The drill checked the manifest when it began; a manifest damaged since is an error (retried, then failed). */
  async function withManifest(
    backupId: string,
    restore: (m: BackupManifest) => Promise<Outcome>,
  ): Promise<Outcome> {
    return restore(await readManifest(backupId));
  }
}

type Outcome = { checks: number; failures: DrillFailure[] };

export class ManifestDamaged extends Error {
  constructor(readonly key: string) {
    super(`${key} does not match the SHA-256 recorded when the backup completed`);
  }
}
