import { CancellationScope, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { OpsActivities } from '../../activities/ops';
import { OpsJob, type BackupInput, type BackupResult } from './contract';
import { runJob } from './job';

const store = proxyActivities<OpsActivities>({
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '2 minutes',
  retry: { maximumAttempts: 3, initialInterval: '30 seconds' },
});
const catalogue = proxyActivities<OpsActivities>({
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 10 },
});

/**
 * The nightly backup: PostgreSQL, ClickHouse and OpenSearch into `<backupId>/` of the backups bucket, the
 * manifest last (only then does the backup exist), then retention. A backup that failed or was canceled
 * before its manifest is marked failed in the catalogue (its dumps are stopped; partial objects go at
 * retention); one canceled after it completes.
 */
export async function backupStores(input: BackupInput): Promise<BackupResult> {
  const { backupId } = input;
  return runJob(
    OpsJob.backup,
    async () => {
      await catalogue.beginBackup({ backupId });
      const postgres = await store.backupPostgres({ backupId });
      const clickhouse = await store.backupClickHouse({ backupId });
      const opensearch = await store.backupOpenSearch({ backupId });
      // Once every store is in the bucket, finishing (the manifest, retention: seconds) is cheaper than
      // undoing: a cancellation from here on lets the backup complete.
      return CancellationScope.nonCancellable(async () => {
        const done = await catalogue.completeBackup({ backupId, postgres, clickhouse, opensearch });
        const expired = await catalogue.expireBackups({
          retentionDays: input.retentionDays,
          keepAtLeast: input.keepAtLeast,
          asOf: workflowInfo().startTime.toISOString(),
        });
        return { ...done, expired };
      });
    },
    {
      summary: (r) => ({ bytes: r.bytes, objects: r.objects, expired: r.expired }),
      compensate: (reason) => catalogue.markBackupFailed({ backupId, reason }),
    },
  );
}
