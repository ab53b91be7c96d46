import { ParentClosePolicy, WorkflowIdReusePolicy, executeChild, workflowInfo } from '@temporalio/workflow';
import { defineSearchAttributeKey, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  OpsJob,
  TASK_QUEUE,
  minuteKey,
  opsRunId,
  type BackupInput,
  type BackupResult,
  type DimensionRefreshInput,
  type DimensionRefreshResult,
  type LaunchResult,
  type PartitionMaintenanceResult,
  type RecommendationsInput,
  type RecommendationsResult,
  type RestoreDrillResult,
} from './contract';
import { backupStores } from './backups';
import { dimensionRefresh } from './dimensions';
import { partitionMaintenance } from './partitions';
import { refreshRecommendations } from './recommendations';
import { restoreDrill } from './restore-drill';

/** Set by Temporal on every run a schedule starts: the time the run was due (not when it started). */
const SCHEDULED_AT = defineSearchAttributeKey('TemporalScheduledStartTime', 'DATETIME');

/**
 * The runs a Schedule starts carry its ID and a timestamp; these launchers derive the business key — the
 * job and the minute it was due — and run the job as a child under it. The job's outcome is the launcher's,
 * so the schedule's recent runs show failures. A key that ran already (a second firing, a replayed start) is
 * not run again; a failed one may be (ALLOW_DUPLICATE_FAILED_ONLY). Abandoned on close: terminating a
 * launcher never cuts a backup in half; cancelling it cancels the job, which ends in order.
 */ function dueAt(): Date {
  const info = workflowInfo();
  return info.typedSearchAttributes.get(SCHEDULED_AT) ?? info.startTime;
}

const childOptions = (workflowId: string) => ({
  workflowId,
  taskQueue: TASK_QUEUE,
  parentClosePolicy: ParentClosePolicy.ABANDON,
  workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
});

async function once<R>(workflowId: string, run: () => Promise<R>): Promise<LaunchResult<R>> {
  try {
    return { workflowId, started: true, result: await run() };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { workflowId, started: false };
    throw err;
  }
}

export async function scheduledDimensionRefresh(
  input: DimensionRefreshInput,
): Promise<LaunchResult<DimensionRefreshResult>> {
  const id = opsRunId(OpsJob.dimensionRefresh, dueAt());
  return once(id, () => executeChild(dimensionRefresh, { ...childOptions(id), args: [input] }));
}

export async function scheduledPartitionMaintenance(): Promise<LaunchResult<PartitionMaintenanceResult>> {
  const id = opsRunId(OpsJob.partitionMaintenance, dueAt());
  return once(id, () => executeChild(partitionMaintenance, childOptions(id)));
}

export async function scheduledBackup(
  input: Omit<BackupInput, 'backupId'>,
): Promise<LaunchResult<BackupResult>> {
  const due = dueAt();
  const id = opsRunId(OpsJob.backup, due);
  return once(id, () =>
    executeChild(backupStores, { ...childOptions(id), args: [{ ...input, backupId: minuteKey(due) }] }),
  );
}

export async function scheduledRestoreDrill(): Promise<LaunchResult<RestoreDrillResult>> {
  const id = opsRunId(OpsJob.restoreDrill, dueAt());
  return once(id, () => executeChild(restoreDrill, { ...childOptions(id), args: [{ drillId: id }] }));
}

export async function scheduledRecommendations(
  input: RecommendationsInput,
): Promise<LaunchResult<RecommendationsResult>> {
  const id = opsRunId(OpsJob.recommendations, dueAt());
  return once(id, () => executeChild(refreshRecommendations, { ...childOptions(id), args: [input] }));
}
