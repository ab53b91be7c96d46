import {
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type WorkflowStartOptions,
} from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import { ValidationError } from '../../lib/errors';
import type { TaskQueue } from '../../lib/task-queues';

export interface Started {
  workflowId: string;
  runId: string;
  /** True when this call found the run already there (same business key or Idempotency-Key). */
  existing: boolean;
  statusUrl: string;
}

const KEY = /^[A-Za-z0-9._:-]{1,100}$/;

/** An Idempotency-Key header, checked; undefined when the caller sent none. */
export function idempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const key = Array.isArray(header) ? header[0] : header;
  if (!key || !KEY.test(key)) {
    throw new ValidationError('Idempotency-Key must be 1–100 characters of letters, digits, . _ : -', [
      { field: 'headers.idempotency-key', message: 'must match ^[A-Za-z0-9._:-]{1,100}$' },
    ]);
  }
  return key;
}

export const statusUrl = (workflowId: string) => `/v1/workflows/${encodeURIComponent(workflowId)}`;

/**
 * Starts a workflow under an ID derived from its business key. Starting twice is safe: an ID that
 * has a run, running or closed, is not started again (REJECT_DUPLICATE), and the caller gets the
 * run that owns the key. The first start costs one RPC.
 */
export async function startOnce<W extends Workflow>(
  client: Client,
  workflow: W | string,
  opts: WorkflowStartOptions<W> & { taskQueue: TaskQueue },
): Promise<Started> {
  try {
    const handle = await client.workflow.start(workflow, {
      ...opts,
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
    return {
      workflowId: opts.workflowId,
      runId: handle.firstExecutionRunId,
      existing: false,
      statusUrl: statusUrl(opts.workflowId),
    };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const { runId } = await client.workflow.getHandle(opts.workflowId).describe();
    return { workflowId: opts.workflowId, runId, existing: true, statusUrl: statusUrl(opts.workflowId) };
  }
}
