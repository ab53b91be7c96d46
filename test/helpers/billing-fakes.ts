import { ApplicationFailure } from '@temporalio/common';
import type {
  ChargeAndRecordInput,
  ChargeInput,
  SubscriptionChange,
} from '../../activities/billing/subscriptions';
import { BUILT_IN_PLANS } from '../../domain/billing/plans';
import type { PlanTerms } from '../../domain/billing/terms';
import type { ChargeResult } from '../../domain/billing/payments';

/** What a fake payment method does on its n-th charge attempt (0-based) for one subscription. */
export type Script = (
  attempt: number,
  input: ChargeInput,
) => ChargeResult['outcome'] | 'soft' | 'hard' | 'timeout';

const declined = (code: string, retry: 'soft' | 'hard'): ChargeResult => ({
  outcome: 'declined',
  reference: `ref-${code}`,
  code,
  retry,
});

/**
 * Mocked billing activities for time-skipping workflow tests: an in-memory provider that honours
 * idempotency keys like the real one (a key charges once; a repeat gets the first answer), and a
 * recorder of every state change the workflow writes.
 */
export function fakeBilling(plans: PlanTerms[] = BUILT_IN_PLANS) {
  const scripts = new Map<string, Script>(); // by payment method
  const attempts: ChargeInput[] = []; // every call, retries included
  const answered = new Map<string, ChargeResult>(); // the provider's records, by idempotency key
  const changes: SubscriptionChange[] = [];

  const activities = {
    async quotePlan(plan: string): Promise<PlanTerms> {
      const terms = plans.find((p) => p.plan === plan);
      if (!terms) throw ApplicationFailure.nonRetryable(`Unknown plan "${plan}"`, 'UnknownPlan');
      return terms;
    },
    async chargeSubscription(input: ChargeInput): Promise<ChargeResult> {
      attempts.push(input);
      const first = answered.get(input.idempotencyKey);
      if (first) return first;
      const script = scripts.get(input.paymentMethodId) ?? (() => 'succeeded');
      const n = charges(input.subscriptionId).length;
      const step = script(n, input);
      if (step === 'timeout') {
        // The provider charged, but the answer never arrived: the retry must use the same key.
        answered.set(input.idempotencyKey, { outcome: 'succeeded', reference: `ch-${input.idempotencyKey}` });
        throw new Error('provider timed out');
      }
      const result: ChargeResult =
        step === 'soft' || step === 'declined'
          ? declined('insufficient_funds', 'soft')
          : step === 'hard'
            ? declined('expired_card', 'hard')
            : { outcome: 'succeeded', reference: `ch-${input.idempotencyKey}` };
      answered.set(input.idempotencyKey, result);
      return result;
    },
    async recordSubscriptionChange(change: SubscriptionChange): Promise<void> {
      changes.push(structuredClone(change));
    },
    // The same composition as the real activity: charge, and write the change only when paid.
    async chargeAndRecordIfPaid({ charge, ifPaid }: ChargeAndRecordInput): Promise<ChargeResult> {
      const result = await activities.chargeSubscription(charge);
      if (result.outcome === 'succeeded') {
        const { idempotencyKey, amountMinor } = charge;
        await activities.recordSubscriptionChange({
          ...ifPaid,
          charge: { idempotencyKey, amountMinor, result },
        });
      }
      return result;
    },
  };

  /** The provider's records for one subscription, in order: one per idempotency key. */
  function charges(subscriptionId: string) {
    return [...answered.entries()]
      .map(([key, result]) => ({
        key,
        result,
        input: attempts.find((a) => a.idempotencyKey === key) as ChargeInput,
      }))
      .filter((c) => c.input.subscriptionId === subscriptionId);
  }

  return {
    activities,
    script: (paymentMethodId: string, fn: Script) => scripts.set(paymentMethodId, fn),
    attempts: (subscriptionId: string) => attempts.filter((a) => a.subscriptionId === subscriptionId),
    charges,
    changes: (subscriptionId: string) => changes.filter((c) => c.subscriptionId === subscriptionId),
  };
}
