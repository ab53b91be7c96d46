import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { OpsActivities } from '../../activities/ops';
import {
  OpsFailure,
  OpsJob,
  type DrillFailure,
  type RestoreDrillInput,
  type RestoreDrillResult,
} from './contract';
import { runJob, showStatus } from './job';

const restore = proxyActivities<OpsActivities>({
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '2 minutes',
  retry: { maximumAttempts: 3, initialInterval: '30 seconds' },
});
const catalogue = proxyActivities<OpsActivities>({
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: [OpsFailure.BackupNotFound] },
});

/**
 * The weekly restore drill: the latest backup (or the one named) is restored into scratch databases and
 * compared with the counts and checksums its manifest recorded from the source. The drill's findings are
 * recorded (restore_drills, and the metrics from it); a drill that found anything then fails its run, on
 * purpose — the one job whose bad outcome is a red run, because an unusable backup needs a person today.
 */
export async function restoreDrill(input: RestoreDrillInput): Promise<RestoreDrillResult> {
  const { drillId } = input;
  const result = await runJob(
    OpsJob.restoreDrill,
    async () => {
      const begun = await catalogue.beginRestoreDrill(input);
      const failures: DrillFailure[] = begun.problem ? [begun.problem] : [];
      let checks = failures.length;
      if (begun.backupId && !begun.problem) {
        const backupId = begun.backupId;
        for (const step of [
          restore.restorePostgresBackup,
          restore.restoreClickHouseBackup,
          restore.restoreOpenSearchBackup,
        ]) {
          const outcome = await step({ drillId, backupId });
          checks += outcome.checks;
          failures.push(...outcome.failures);
        }
      }
      const drill = await catalogue.finishRestoreDrill({
        drillId,
        backupId: begun.backupId,
        checks,
        failures,
      });
      if (drill.status === 'failed') {
        const first = drill.failures[0] as DrillFailure;
        throw ApplicationFailure.nonRetryable(
          `restore drill ${drillId} failed ${drill.failures.length} of ${drill.checks} checks on backup ` +
            `${drill.backupId || '(none)'}; first: ${first.store} ${first.object}: ${first.reason}`,
          OpsFailure.RestoreDrillFailed,
          drill,
        );
      }
      return drill;
    },
    {
      summary: (r) => ({ backupId: r.backupId, checks: r.checks }),
      // A canceled drill found nothing either way: recorded as canceled, not failed (no alert).
      compensate: (reason) => catalogue.abandonRestoreDrill({ drillId, reason }),
    },
  );
  showStatus('passed');
  return result;
}
