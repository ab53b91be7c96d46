import {
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { OpsActivities } from '../../activities/ops';
import { SEARCH, type OpsJob } from './contract';

const { recordJobStarted, recordJobFinished } = proxyActivities<OpsActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumInterval: '1 minute' },
});

export type JobStatus = 'running' | 'succeeded' | 'passed' | 'failed' | 'canceled';

/** The run's outcome where operators filter runs (CadenzaStatus in the Web UI). */
export const showStatus = (status: JobStatus) =>
  upsertSearchAttributes([{ key: SEARCH.status, value: status }]);

function reasonOf(err: unknown): string {
  if (isCancellation(err)) return 'canceled by an operator';
  if (err instanceof ApplicationFailure || err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
  }
  return String(err);
}

/**
 * A scheduled job's frame: its run is recorded in ops_job_runs under the workflow ID (its business key) and
 * its status shown as a search attribute. A failure or a cancellation is recorded, after `compensate` has
 * left the job's own records consistent, in a scope a cancellation cannot interrupt; then the run ends as
 * failed or canceled, so the schedule and the job metrics show it. A job whose work finished records its
 * success even if a cancellation came meanwhile (the body decides which of its steps finish regardless).
 */
export async function runJob<R>(
  job: OpsJob,
  body: () => Promise<R>,
  opts: { summary?: (r: R) => Record<string, unknown>; compensate?: (reason: string) => Promise<void> } = {},
): Promise<R> {
  const runKey = workflowInfo().workflowId;
  showStatus('running');
  await recordJobStarted({ runKey, job });
  let result: R;
  try {
    result = await body();
  } catch (err) {
    const reason = reasonOf(err);
    await CancellationScope.nonCancellable(async () => {
      await opts.compensate?.(reason);
      await recordJobFinished({ runKey, status: 'failed', error: reason });
    });
    showStatus(isCancellation(err) ? 'canceled' : 'failed');
    throw err;
  }
  // Done is done: a cancellation that arrives after the work finished does not undo its record.
  await CancellationScope.nonCancellable(() =>
    recordJobFinished({ runKey, status: 'succeeded', summary: opts.summary?.(result) ?? {} }),
  );
  showStatus('succeeded');
  return result;
}
