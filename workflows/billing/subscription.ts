import { CancellationScope, continueAsNew, isCancellation, patched, setHandler } from '@temporalio/workflow';
import {
  cancelSubscription,
  changePlan,
  paymentMethodUpdated,
  subscriptionState,
  type SubscriptionEnd,
  type SubscriptionInput,
} from './contract';
import { subscriptionBeforeV5 } from './subscription-before-v5';
import { SubscriptionLifecycle } from './subscription-lifecycle';

/**
 * One long-lived workflow per subscription (ID `subscription-<id>`, queue `billing`): trialing or pending
 * → active → past_due (grace, dunning) → active | expired, or canceled. Each run covers one period and
 * continues as new after its renewal, so histories stay short. The rules live in `SubscriptionLifecycle`.
 * Inputs, queries and updates carry IDs, plan names and amounts only — never personal data.
 */

/**
 * The version of this code, handed on at continue-as-new: a run whose input carries it takes this code
 * at once; a new subscription asks `patched('subscription-code-v5')` once. Runs of older code (and their
 * recorded histories) replay through subscriptionBeforeV5 and continue as new into this code.
 */
export const CODE_VERSION = 5;

export async function subscription(input: SubscriptionInput): Promise<SubscriptionEnd> {
  const continuedByThisCode = 'state' in input && (input.state.codeVersion ?? 0) >= CODE_VERSION;
  if (!continuedByThisCode && !patched(`subscription-code-v${CODE_VERSION}`))
    return subscriptionBeforeV5(input);

  // Queries never wait: answered from the start input until the plan is quoted (older API starts only).
  let lifecycle: SubscriptionLifecycle | undefined = undefined;
  setHandler(subscriptionState, () => lifecycle?.view() ?? SubscriptionLifecycle.startingView(input));
  lifecycle = await SubscriptionLifecycle.create(input);
  setHandler(cancelSubscription, (request) => lifecycle.cancel(request), {
    validator: (_request) => lifecycle.refuseIfEnded(),
  });
  setHandler(changePlan, (request) => lifecycle.changePlan(request), {
    validator: ({ plan }) => {
      if (typeof plan !== 'string' || !/^[a-z][a-z0-9_-]{1,40}$/.test(plan))
        throw new Error(`"${plan}" is not a plan name`);
      lifecycle.refusePlanChange();
    },
  });
  setHandler(paymentMethodUpdated, (request) => lifecycle.paymentMethodUpdated(request), {
    validator: (_request) => lifecycle.refuseIfEnded(),
  });
  // A cancellation from the Web UI, the CLI or the API is an operator's cancel now, done as business.
  CancellationScope.current().cancelRequested.catch(() => lifecycle.cancelByOperator());

  try {
    await lifecycle.open();
    await lifecycle.untilPeriodEnd();
    await lifecycle.renew();
    await lifecycle.dun();
  } catch (err) {
    if (!isCancellation(err)) throw err;
    lifecycle.cancelByOperator();
  }
  await CancellationScope.nonCancellable(() => lifecycle.settled());
  // The run shows Canceled when an operator canceled it; the subscription's end is recorded either way.
  if (CancellationScope.current().consideredCancelled) await CancellationScope.current().cancelRequested;
  if (lifecycle.ended) return lifecycle.ended;
  return continueAsNew<typeof subscription>({
    state: lifecycle.continued(CODE_VERSION),
  });
}
