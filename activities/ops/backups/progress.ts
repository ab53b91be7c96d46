import { Context } from '@temporalio/activity';

/**
 * Heartbeats and cancellation for the backup and restore steps, which also run outside an activity (the
 * operator's `npm run restore`): there, heartbeats go nowhere and nothing cancels.
 */
function context(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** Reports progress (the activity's heartbeat details); throws once the workflow has cancelled the step. */
export function progress(details: Record<string, unknown>): void {
  const ctx = context();
  if (!ctx) return;
  ctx.heartbeat(details);
  if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new Error('cancelled');
}

/** Aborts child processes and requests when the workflow cancels the step. */
export const cancellation = (): AbortSignal | undefined => context()?.cancellationSignal;
