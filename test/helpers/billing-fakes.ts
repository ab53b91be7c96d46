import { ApplicationFailure } from '@temporalio/common';
import type {
  ChargeAndRecordInput,
  ChargeForPeriodInput,
  ChargeForPeriodResult,
  ChargeInput,
  OpenInput,
  OpenResult,
  RefundInput,
  RefundOutcome,
  SubscriptionChange,
} from '../../activities/billing/subscriptions';
import { BUILT_IN_PLANS, PlanCatalog } from '../../domain/billing/plans';
import { planFamily, type PlanTerms } from '../../domain/billing/terms';
import type { ChargeResult } from '../../domain/billing/payments';

/**
 * What a fake payment method does on its n-th charge (0-based) for one subscription:
 * an outcome, a decline (`soft`, `hard`), `timeout` (charged, but the answer is lost: the retry with the
 * same key gets it), `refused` (the provider refuses the request for good, e.g. a card deleted there),
 * or `hold` (the first attempt fails; the retried charge waits until the test releases it).
 */
export type Script = (
  attempt: number,
  input: ChargeInput,
) => ChargeResult['outcome'] | 'soft' | 'hard' | 'timeout' | 'refused' | 'hold';

const declined = (code: string, retry: 'soft' | 'hard'): ChargeResult => ({
  outcome: 'declined',
  reference: `ref-${code}`,
  code,
  retry,
});

/**
 * Mocked billing activities for time-skipping workflow tests: an in-memory provider that honours
 * idempotency keys like the real one (a key charges once; a repeat gets the first answer; a refund key
 * refunds once), the user policies of `openSubscription`, and a recorder of every state change.
 */
export function fakeBilling(plans: PlanTerms[] = BUILT_IN_PLANS) {
  let catalog = new PlanCatalog(plans);
  const scripts = new Map<string, Script>(); // by payment method
  const attempts: ChargeInput[] = []; // every call, retries included
  const answered = new Map<string, ChargeResult>(); // the provider's records, by idempotency key
  const refunds = new Map<string, RefundInput>(); // by refund key
  const changes: SubscriptionChange[] = [];
  const latest = new Map<string, SubscriptionChange>(); // the projection's rows
  const trials = new Map<string, string>(); // user|family → subscription
  const held = new Map<string, () => void>(); // charges waiting for the test, by idempotency key
  const releasedKeys = new Set<string>();
  const unknownUsers = new Set<string>();

  function decide(input: ChargeInput): ChargeResult | 'timeout' | 'hold' {
    const script = scripts.get(input.paymentMethodId) ?? (() => 'succeeded');
    const step = script(charges(input.subscriptionId).length, input);
    if (step === 'timeout' || step === 'hold') return step;
    return step === 'soft' || step === 'declined'
      ? declined('insufficient_funds', 'soft')
      : step === 'hard'
        ? declined('expired_card', 'hard')
        : step === 'refused'
          ? declined('resource_missing', 'hard')
          : { outcome: 'succeeded', reference: `ch-${input.idempotencyKey}` };
  }

  async function charge(input: ChargeInput, firstAttempt: boolean): Promise<ChargeResult> {
    attempts.push(input);
    if (input.amountMinor === 0) return { outcome: 'succeeded', reference: 'free' }; // never the provider
    const first = answered.get(input.idempotencyKey);
    if (first) return first;
    const step = decide(input);
    if (step === 'timeout') {
      // The provider charged, but the answer never arrived: the retry must use the same key.
      answered.set(input.idempotencyKey, { outcome: 'succeeded', reference: `ch-${input.idempotencyKey}` });
      throw new Error('provider timed out');
    }
    if (step === 'hold') {
      if (firstAttempt) throw new Error('provider slow');
      if (!releasedKeys.has(input.idempotencyKey))
        await new Promise<void>((resolve) => held.set(input.idempotencyKey, resolve));
      const result: ChargeResult = { outcome: 'succeeded', reference: `ch-${input.idempotencyKey}` };
      answered.set(input.idempotencyKey, result);
      return result;
    }
    answered.set(input.idempotencyKey, step);
    return step;
  }

  const activities = {
    async quotePlan(plan: string): Promise<PlanTerms> {
      const terms = catalog.get(plan);
      if (!terms) throw ApplicationFailure.nonRetryable(`Unknown plan "${plan}"`, 'UnknownPlan');
      return terms;
    },
    async chargeSubscription(input: ChargeInput): Promise<ChargeResult> {
      return charge(input, false);
    },
    async recordSubscriptionChange(change: SubscriptionChange): Promise<void> {
      changes.push(structuredClone(change));
      const row = latest.get(change.subscriptionId);
      if (!row || row.version < change.version) latest.set(change.subscriptionId, structuredClone(change));
    },
    // The same composition as the real activity: charge, and write the change only when paid.
    async chargeAndRecordIfPaid({ charge: input, ifPaid }: ChargeAndRecordInput): Promise<ChargeResult> {
      const result = await activities.chargeSubscription(input);
      if (result.outcome === 'succeeded') {
        const { idempotencyKey, amountMinor } = input;
        await activities.recordSubscriptionChange({
          ...ifPaid,
          charge: { idempotencyKey, amountMinor, result },
        });
      }
      return result;
    },
    async chargeForPeriod({
      charge: input,
      ifPaid,
      quote,
    }: ChargeForPeriodInput): Promise<ChargeForPeriodResult> {
      const result = await charge(input, true);
      if (result.outcome === 'succeeded' && ifPaid) {
        const { idempotencyKey, amountMinor } = input;
        await activities.recordSubscriptionChange({
          ...ifPaid,
          charge: { idempotencyKey, amountMinor, result },
        });
      }
      return { result, catalogTerms: quote ? (catalog.get(quote) ?? null) : null };
    },
    async refundPayment(input: RefundInput): Promise<RefundOutcome> {
      if (!refunds.has(input.idempotencyKey)) refunds.set(input.idempotencyKey, structuredClone(input));
      return { refunded: true, reference: `re-${input.idempotencyKey}`, amountMinor: input.amountMinor };
    },
    async openSubscription({ opening, trial, exclusive }: OpenInput): Promise<OpenResult> {
      if (unknownUsers.has(opening.userId))
        throw ApplicationFailure.nonRetryable(`User ${opening.userId} does not exist`, 'UnknownUser');
      const mine = latest.get(opening.subscriptionId);
      if (mine && mine.version >= opening.version)
        return { opened: mine.status !== 'canceled' } as OpenResult;
      const live = exclusive
        ? [...latest.values()].find(
            (c) =>
              c.userId === opening.userId &&
              c.subscriptionId !== opening.subscriptionId &&
              (c.terms.exclusive ?? true) &&
              ['pending', 'trialing', 'active', 'past_due'].includes(c.status),
          )
        : undefined;
      const family = `${opening.userId}|${planFamily(opening.terms)}`;
      const trialTaken = trial ? trials.get(family) : undefined;
      const reason = live
        ? `refused: the user already has live subscription ${live.subscriptionId}; change its plan instead`
        : trialTaken
          ? `refused: the user has had a ${planFamily(opening.terms)} trial (subscription ${trialTaken})`
          : null;
      if (reason) {
        await activities.recordSubscriptionChange({
          ...opening,
          status: 'canceled',
          entitled: false,
          reason,
        });
        return {
          opened: false,
          reason,
          conflictWith: live?.subscriptionId ?? trialTaken ?? null,
          written: true,
        };
      }
      await activities.recordSubscriptionChange(opening);
      if (trial) trials.set(family, opening.subscriptionId);
      return { opened: true };
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
    /** A user the database does not know. */
    unknownUser: (userId: string) => unknownUsers.add(userId),
    /** Replaces the plan catalog (a price or policy change), as a new catalog file would. */
    setPlans: (next: PlanTerms[]) => {
      catalog = new PlanCatalog(next);
    },
    script: (paymentMethodId: string, fn: Script) => scripts.set(paymentMethodId, fn),
    attempts: (subscriptionId: string) => attempts.filter((a) => a.subscriptionId === subscriptionId),
    charges,
    refunds: (subscriptionId: string) =>
      [...refunds.values()].filter((r) => r.subscriptionId === subscriptionId),
    changes: (subscriptionId: string) => changes.filter((c) => c.subscriptionId === subscriptionId),
    row: (subscriptionId: string) => latest.get(subscriptionId),
    /** Held charges of a subscription, by key (those a `hold` script is keeping in flight). */
    holding: (subscriptionId: string) => [...held.keys()].filter((k) => k.includes(subscriptionId)),
    /** Lets a held charge (and any later attempt with its key) succeed. */
    release: (idempotencyKey: string) => {
      releasedKeys.add(idempotencyKey);
      held.get(idempotencyKey)?.();
      held.delete(idempotencyKey);
    },
  };
}
