import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import {
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { isUuid } from '../../domain/play-ticks/ticks';
import type { PaymentProvider } from '../../domain/billing/payments';
import {
  BillingFailure,
  cancelSubscription,
  SEARCH as BILLING,
  SUBSCRIPTION_WORKFLOW,
  subscriptionWorkflowId,
} from '../../workflows/billing/contract';
import { EXPORT_WORKFLOW, GdprFailure } from '../../workflows/compliance/contract';
import { storeStatus, storeWorking } from './requests';

/**
 * Step 3 of an erasure, through Temporal and the payment provider (explicit client activities):
 * every running subscription of the user ends through its business cancel (now, not at the period end),
 * and every payment method is detached at the provider. Runs are found by `CadenzaUserId` and, in case
 * visibility lags, by the subscriptions PostgreSQL knows to be live.
 */

const Live = z.object({ subscription_id: z.string() });
const Method = z.object({ payment_method_id: z.string(), provider_token: z.string() });

function mustBeUuid(userId: string): string {
  if (!isUuid(userId))
    throw ApplicationFailure.nonRetryable(`${userId} is not a user ID`, GdprFailure.BadUserId);
  return userId.toLowerCase();
}

/** Runs of a workflow type for a user, by the visibility query on CadenzaUserId. */
async function runningFor(temporal: Client, type: string, userId: string): Promise<string[]> {
  const ids: string[] = [];
  const query =
    `WorkflowType = '${type}' AND ${BILLING.userId.name} = '${mustBeUuid(userId)}' ` +
    `AND ExecutionStatus = 'Running'`;
  for await (const run of temporal.workflow.list({ query })) ids.push(run.workflowId);
  return ids;
}

/** Waits for a run to close, heartbeating; how it closed does not matter here. */
async function closed(handle: WorkflowHandle): Promise<void> {
  const beat = setInterval(() => heartbeat({ waitingFor: handle.workflowId }), 2000);
  try {
    await handle.result().catch((err: unknown) => {
      if (err instanceof WorkflowFailedError || err instanceof WorkflowNotFoundError) return;
      throw err;
    });
  } finally {
    clearInterval(beat);
  }
}

export function createSubscriptionEndActivities(deps: {
  pool: DatabasePool;
  temporal: Client;
  provider: PaymentProvider;
}) {
  const { pool, temporal, provider } = deps;
  return {
    async endSubscriptions(i: { requestId: string; userId: string }): Promise<{ canceled: number }> {
      const fromVisibility = await runningFor(temporal, SUBSCRIPTION_WORKFLOW, i.userId);
      const fromPostgres = await pool.anyFirst(sql.type(Live)`
        SELECT subscription_id::text FROM subscriptions
        WHERE user_id = ${i.userId} AND status IN ('trialing', 'active', 'past_due')`);
      const ids = new Set([...fromVisibility, ...fromPostgres.map(subscriptionWorkflowId)]);
      const found = await storeWorking(pool, i.requestId, 'subscriptions', { running: ids.size });
      for (const id of ids) {
        heartbeat({ canceling: id });
        const handle = temporal.workflow.getHandle(id);
        try {
          await handle.executeUpdate(cancelSubscription, { args: [{ atPeriodEnd: false }] });
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) continue;
          const type =
            err instanceof WorkflowUpdateFailedError ? (err.cause as ApplicationFailure)?.type : '';
          // Ended already (by us on an earlier attempt, or on its own): nothing to cancel.
          if (type !== BillingFailure.SubscriptionEnded) throw err;
        }
        await closed(handle);
      }
      // An export still gathering would write an archive after the objects are erased: it is canceled.
      for (const id of await runningFor(temporal, EXPORT_WORKFLOW, i.userId)) {
        const handle = temporal.workflow.getHandle(id);
        await handle.cancel().catch(() => undefined);
        await closed(handle);
      }
      await storeStatus(pool, i.requestId, 'subscriptions', 'done');
      return { canceled: found.running ?? ids.size };
    },

    /** Every payment method of the user detached at the provider (the tokens are deleted with PostgreSQL). */
    async detachPaymentMethods(i: { requestId: string; userId: string }): Promise<{ detached: number }> {
      const methods = await pool.any(sql.type(Method)`
        SELECT payment_method_id::text, provider_token FROM payment_methods WHERE user_id = ${i.userId}`);
      const found = await storeWorking(pool, i.requestId, 'payments', { methods: methods.length });
      for (const m of methods) {
        await provider.detach(m.provider_token);
        await pool.query(sql.unsafe`
          UPDATE payment_methods SET status = 'detached' WHERE payment_method_id = ${m.payment_method_id}`);
      }
      await storeStatus(pool, i.requestId, 'payments', 'done');
      return { detached: found.methods ?? methods.length };
    },
  };
}
