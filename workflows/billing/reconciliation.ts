import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { ReconciliationActivities } from '../../activities/billing/reconciliation';
import type { ReconciliationInput, ReconciliationResult } from './contract';

/**
 * Billing reconciliation (daily by schedule, on demand by an operator, or for one subscription when the
 * API finds its run closed): the provider's charges and refunds against payment_transactions, then each
 * live subscription row against its workflow. Every fix is written to billing_mismatches and audit_log
 * by the activities; the result counts what was found. Long steps heartbeat and resume where they were.
 */
const { reconcilePayments, reconcileSubscriptionRows } = proxyActivities<ReconciliationActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes' },
});

const DAY = 86_400_000;

export async function billingReconciliation(input: ReconciliationInput = {}): Promise<ReconciliationResult> {
  const runBy = `workflow:${workflowInfo().workflowId}`;
  const result: ReconciliationResult = {
    chargesCompared: 0,
    refundsCompared: 0,
    subscriptionsCompared: 0,
    mismatches: {},
  };
  const add = (found: Record<string, number>) => {
    for (const [kind, n] of Object.entries(found))
      result.mismatches[kind] = (result.mismatches[kind] ?? 0) + n;
  };
  if (!input.subscriptionId) {
    const payments = await reconcilePayments({ since: Date.now() - (input.lookbackMs ?? 3 * DAY), runBy });
    result.chargesCompared = payments.chargesCompared;
    result.refundsCompared = payments.refundsCompared;
    add(payments.mismatches);
  }
  const rows = await reconcileSubscriptionRows({ subscriptionId: input.subscriptionId, runBy });
  result.subscriptionsCompared = rows.subscriptionsCompared;
  add(rows.mismatches);
  return result;
}
