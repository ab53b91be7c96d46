import { ParentClosePolicy, startChild, uuid4, workflowInfo } from '@temporalio/workflow';
import { defineSearchAttributeKey, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { previousMonth, type Month } from '../../domain/royalties/pins';
import { TASK_QUEUE, settlementWorkflowId, type ScheduledSettlementInput } from './contract';
import { royaltySettlement } from './settlement';

/** Set by Temporal on every run a schedule starts: the time the run was due (not when it started). */
const SCHEDULED_AT = defineSearchAttributeKey('TemporalScheduledStartTime', 'DATETIME');

/**
 * Started by the monthly Schedule (whose run IDs carry a timestamp): derives the month it settles — the one
 * before the due time — and starts `royalty-settlement-<month>`, which lives on by itself (abandoned by this
 * short parent). A month already started, by a person or an earlier firing, running or closed, is left as it is.
 */
export async function scheduledRoyaltySettlement(
  input: ScheduledSettlementInput,
): Promise<{ month: Month; workflowId: string; started: boolean }> {
  const info = workflowInfo();
  const due = info.typedSearchAttributes.get(SCHEDULED_AT) ?? info.startTime;
  const month = previousMonth(due.getTime());
  const workflowId = settlementWorkflowId(month);
  try {
    await startChild(royaltySettlement, {
      workflowId,
      taskQueue: TASK_QUEUE,
      parentClosePolicy: ParentClosePolicy.ABANDON,
      // A month's first run happens once, whoever started it and however it ended (as the API starts it).
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      args: [{ month, rerun: 0, runId: uuid4(), startedBy: 'schedule', ...input }],
    });
    return { month, workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { month, workflowId, started: false };
    throw err;
  }
}
