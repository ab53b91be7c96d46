import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
} from '@temporalio/workflow';
import type { BillingActivities, SubscriptionChange } from '../../activities/billing/subscriptions';
import {
  addSpan,
  chargeKey,
  days,
  prorate,
  sameSpan,
  type PlanTerms,
  type SubscriptionStatus,
} from '../../domain/billing/terms';
import type { ChargeResult } from '../../domain/billing/payments';
import {
  BillingFailure,
  cancelSubscription,
  changePlan,
  paymentMethodUpdated,
  subscriptionState,
  type PlanChangeResult,
  type SubscriptionEnd,
  type SubscriptionInput,
  type SubscriptionState,
  type SubscriptionView,
} from './contract';

/**
 * One long-lived workflow per subscription (ID `subscription-<id>`, queue `billing`):
 * trialing → active → past_due (grace, premium kept, dunning retries) → active | expired, or canceled.
 * Each run covers one period and continues as new after the renewal, so histories stay short.
 * Inputs, queries and updates carry IDs, plan names and amounts only — never personal data.
 */

const { quotePlan, recordSubscriptionChange } = proxyActivities<BillingActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});
// State writes are short PostgreSQL transactions: as local activities they run inside the workflow task
// that decided them, which halves the server round trips of a renewal (patched: older runs replay as before).
const local = proxyLocalActivities<BillingActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});
// Transient provider failures retry without limit, always with the attempt's idempotency key.
const chargeRetry = {
  initialInterval: '2 seconds',
  backoffCoefficient: 2,
  maximumInterval: '5 minutes',
} as const;
const { chargeSubscription } = proxyActivities<BillingActivities>({
  startToCloseTimeout: '1 minute',
  retry: chargeRetry,
});
// Charges as local activities too: a renewal is then one workflow task (timer → charge → write →
// continue-as-new) instead of three. A worker that dies mid-charge leaves the task to be run again
// elsewhere, which repeats the charge with the same idempotency key: the provider charges once. Retries
// longer than 10 s become timers in the history, so a provider outage is visible in the Web UI.
const localCharges = proxyLocalActivities<BillingActivities>({
  startToCloseTimeout: '1 minute',
  localRetryThreshold: '10 seconds',
  retry: chargeRetry,
});
const chargeThroughProvider = (
  input: Parameters<BillingActivities['chargeSubscription']>[0],
  asLocal: boolean,
) => (asLocal ? localCharges.chargeSubscription(input) : chargeSubscription(input));

/**
 * The version of this code, handed on at continue-as-new. A run of this code takes the current paths
 * directly; the older patches decide only for histories older code wrote, which must keep replaying.
 * Every renewal is a new run, so this spares each one the patch markers and the search-attribute write
 * that each marker brings.
 */
export const CODE_VERSION = 4;

const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();
const refuse = (type: BillingFailure, message: string) =>
  ApplicationFailure.create({ type, message, nonRetryable: true });

/** Runs handlers and the renewal one at a time, in arrival order (a deterministic promise chain). */
function serial() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

export async function subscription(input: SubscriptionInput): Promise<SubscriptionEnd> {
  const ids = 'start' in input ? input.start : input.state;
  let s: SubscriptionState | undefined = 'state' in input ? input.state : undefined;
  let ended: SubscriptionEnd | undefined;
  let grace: { until: number; hard: boolean; code: string; nextRetry: number | null } | undefined;
  let retrySoon = false;
  const exclusive = serial();
  // Runs continued by this code say so in their input; a new run asks once, as its first step (one marker
  // at creation, none at renewal). Replaying a history older code wrote, this is false and each patch
  // below decides on its own.
  const current =
    ('state' in input && (input.state.codeVersion ?? 0) >= CODE_VERSION) ||
    patched(`subscription-code-v${CODE_VERSION}`);
  const has = (patch: string) => current || patched(patch);

  function view(): SubscriptionView {
    const base = {
      subscriptionId: ids.subscriptionId,
      userId: ids.userId,
      paymentMethodId: s?.paymentMethodId ?? ids.paymentMethodId,
    };
    if (!s) {
      return {
        ...base,
        status: 'pending',
        plan: null,
        priceMinor: null,
        currency: null,
        pendingPlan: null,
        periodIndex: 0,
        periodStart: null,
        periodEnd: null,
        cancelAtPeriodEnd: false,
        nextChargeAt: null,
        nextChargeMinor: null,
        graceUntil: null,
        lastDeclineCode: null,
      };
    }
    const live = !ended;
    const next = !live || s.cancelAtPeriodEnd ? null : grace ? grace.nextRetry : s.periodEnd;
    return {
      ...base,
      status: s.status,
      plan: s.terms.plan,
      priceMinor: s.terms.priceMinor,
      currency: s.terms.currency,
      pendingPlan: s.pendingPlan?.plan ?? null,
      periodIndex: s.periodIndex,
      periodStart: iso(s.periodStart),
      periodEnd: iso(s.periodEnd),
      cancelAtPeriodEnd: s.cancelAtPeriodEnd,
      nextChargeAt: iso(next),
      nextChargeMinor: next === null ? null : (s.pendingPlan ?? s.terms).priceMinor,
      graceUntil: iso(live ? grace?.until : null),
      lastDeclineCode: grace?.code ?? null,
    };
  }

  /** The change that writes state `st` (already at its new version). */
  function changeOf(
    st: SubscriptionState,
    fromStatus: SubscriptionStatus | null,
    reason: string,
    extra: Pick<SubscriptionChange, 'charge' | 'message'> = {},
  ): SubscriptionChange {
    return {
      subscriptionId: st.subscriptionId,
      userId: st.userId,
      version: st.version,
      fromStatus,
      status: st.status,
      reason,
      terms: st.terms,
      pendingPlan: st.pendingPlan?.plan ?? null,
      periodIndex: st.periodIndex,
      periodStart: st.periodStart,
      periodEnd: st.periodEnd,
      graceUntil: st.status === 'past_due' ? (grace?.until ?? null) : null,
      cancelAtPeriodEnd: st.cancelAtPeriodEnd,
      paymentMethodId: st.paymentMethodId,
      ...extra,
    };
  }

  /** Writes the current state as the next version, with the charge and message it carries. */
  async function record(
    st: SubscriptionState,
    fromStatus: SubscriptionStatus | null,
    reason: string,
    extra: Pick<SubscriptionChange, 'charge' | 'message'> = {},
  ): Promise<void> {
    st.version += 1;
    const write = has('state-writes-as-local-activities')
      ? local.recordSubscriptionChange
      : recordSubscriptionChange;
    await write(changeOf(st, fromStatus, reason, extra));
  }

  async function finish(
    st: SubscriptionState,
    status: 'expired' | 'canceled',
    reason: string,
  ): Promise<void> {
    const from = st.version === 0 ? null : st.status;
    st.status = status;
    ended = { subscriptionId: st.subscriptionId, status, reason };
    await record(st, from, reason, { message: { topic: `subscription.${status}`, data: { reason } } });
  }

  /** Charges period n = periodIndex + 1; on success the subscription is active in period n. */
  async function charge(st: SubscriptionState, attempt: number | string): Promise<ChargeResult> {
    const period = st.periodIndex + 1;
    const idempotencyKey = chargeKey(st.subscriptionId, period, attempt);
    const amountMinor = st.terms.priceMinor;
    const chargeInput = {
      subscriptionId: st.subscriptionId,
      userId: st.userId,
      paymentMethodId: st.paymentMethodId,
      amountMinor,
      currency: st.terms.currency,
      period,
      idempotencyKey,
    };
    const from = st.version === 0 ? null : st.status;
    // What the subscription becomes if the charge succeeds, decided before it is made.
    const recovered = grace !== undefined;
    const paidState: SubscriptionState = {
      ...st,
      status: 'active',
      periodIndex: period,
      periodStart: addSpan(st.anchor, st.terms.period, period - 1),
      periodEnd: addSpan(st.anchor, st.terms.period, period),
      version: st.version + 1,
    };
    const paidReason = recovered ? 'payment recovered' : `period ${period} paid`;
    const paidMessage = {
      topic:
        from === null
          ? 'subscription.started'
          : recovered
            ? 'subscription.recovered'
            : 'subscription.renewed',
      data: { period, amountMinor, currency: st.terms.currency, periodEnd: iso(paidState.periodEnd) },
    };
    if (has('charge-and-write-in-one-local-activity')) {
      // The common path in one local activity: charge, and write the paid period with it.
      const result = await local.chargeAndRecordIfPaid({
        charge: chargeInput,
        ifPaid: changeOf(paidState, from, paidReason, { message: paidMessage }),
      });
      if (result.outcome === 'succeeded') {
        Object.assign(st, paidState);
        grace = undefined;
        return result;
      }
      return declined(st, from, { charge: { idempotencyKey, amountMinor, result } }, result);
    }
    const result = await chargeThroughProvider(chargeInput, has('charges-as-local-activities'));
    const paid = { charge: { idempotencyKey, amountMinor, result } };
    if (result.outcome === 'succeeded') {
      Object.assign(st, { ...paidState, version: st.version });
      grace = undefined;
      await record(st, from, paidReason, { ...paid, message: paidMessage });
      return result;
    }
    return declined(st, from, paid, result);
  }

  /** A declined charge: a first payment ends the subscription; a renewal goes into grace. */
  async function declined(
    st: SubscriptionState,
    from: SubscriptionStatus | null,
    paid: Pick<SubscriptionChange, 'charge'>,
    result: Extract<ChargeResult, { outcome: 'declined' }>,
  ): Promise<ChargeResult> {
    const period = st.periodIndex + 1;
    if (from === null) {
      // A first payment that fails never starts premium: the subscription ends at once.
      st.periodEnd = addSpan(st.anchor, st.terms.period, 1);
      const reason = `initial payment declined: ${result.code}`;
      st.status = 'expired';
      ended = { subscriptionId: st.subscriptionId, status: 'expired', reason };
      await record(st, null, reason, {
        ...paid,
        message: { topic: 'subscription.expired', data: { reason } },
      });
      return result;
    }
    grace ??= { until: st.periodEnd + st.terms.graceMs, hard: false, code: result.code, nextRetry: null };
    grace.hard = result.retry === 'hard';
    grace.code = result.code;
    st.status = 'past_due';
    await record(st, from, `payment declined (${result.retry}): ${result.code}`, {
      ...paid,
      message: {
        topic: 'subscription.payment_failed',
        data: { period, code: result.code, retry: result.retry, graceUntil: iso(grace.until) },
      },
    });
    return result;
  }

  function live(): SubscriptionState {
    if (ended)
      throw refuse(BillingFailure.SubscriptionEnded, `The subscription is ${ended.status}: ${ended.reason}`);
    if (!s)
      throw refuse(
        BillingFailure.SubscriptionStarting,
        'The subscription is still starting; try again in a moment',
      );
    return s;
  }

  /** Update validators: an ended subscription refuses before anything is written to its history. */
  const refuseIfEnded = (..._args: unknown[]) => {
    if (ended) live();
  };

  setHandler(subscriptionState, view);

  setHandler(
    cancelSubscription,
    ({ atPeriodEnd }) =>
      exclusive(async () => {
        const st = live();
        // In grace there is no paid period left to run out: canceling ends it now.
        if (atPeriodEnd && st.status !== 'past_due') {
          if (!st.cancelAtPeriodEnd) {
            st.cancelAtPeriodEnd = true;
            await record(st, st.status, 'cancel at period end requested', {
              message: { topic: 'subscription.cancel_scheduled', data: { periodEnd: iso(st.periodEnd) } },
            });
          }
        } else {
          await finish(st, 'canceled', atPeriodEnd ? 'canceled while past due' : 'canceled immediately');
        }
        return view();
      }),
    { validator: refuseIfEnded },
  );

  setHandler(
    changePlan,
    ({ plan }) =>
      exclusive(async () => {
        const st = live();
        if (st.status === 'past_due') {
          throw refuse(
            BillingFailure.PastDue,
            'The subscription is past due: update the payment method before changing plan',
          );
        }
        let terms: PlanTerms;
        try {
          terms = await quotePlan(plan);
        } catch (err) {
          const cause = err instanceof ActivityFailure ? err.cause : err;
          throw refuse(BillingFailure.UnknownPlan, cause instanceof Error ? cause.message : String(cause));
        }
        if (terms.currency !== st.terms.currency || !sameSpan(terms.period, st.terms.period)) {
          throw refuse(
            BillingFailure.IncompatiblePlan,
            `Plan ${plan} bills in another currency or period; cancel and subscribe to it instead`,
          );
        }
        const now = Date.now();
        const result = (effective: 'now' | 'next_period', prorationMinor = 0): PlanChangeResult => ({
          plan,
          effective,
          effectiveAt: iso(effective === 'now' ? now : st.periodEnd) as string,
          prorationMinor,
          subscription: view(),
        });
        if (plan === st.terms.plan) {
          if (!st.pendingPlan)
            throw refuse(BillingFailure.SamePlan, `The subscription is already on ${plan}`);
          st.pendingPlan = null; // keeping the current plan withdraws a scheduled downgrade
          await record(st, st.status, 'scheduled plan change withdrawn');
          return result('now');
        }
        // Downgrades wait for the period end (the period is paid); no refunds.
        if (st.status === 'active' && terms.priceMinor < st.terms.priceMinor) {
          st.pendingPlan = terms;
          await record(st, st.status, `downgrade to ${plan} scheduled`, {
            message: {
              topic: 'subscription.plan_change_scheduled',
              data: { plan, effectiveAt: iso(st.periodEnd) },
            },
          });
          return result('next_period');
        }
        // Upgrades (and any change in a trial) take effect now; an upgrade pays the difference for the
        // rest of the period, prorated to the millisecond, rounded half up to the minor unit.
        const amountMinor =
          st.status === 'active'
            ? prorate(
                st.terms.priceMinor,
                terms.priceMinor,
                st.periodEnd - now,
                st.periodEnd - st.periodStart,
              )
            : 0;
        let extra: Pick<SubscriptionChange, 'charge'> = {};
        if (amountMinor > 0) {
          const idempotencyKey = chargeKey(st.subscriptionId, st.periodIndex, `change-v${st.version + 1}`);
          const paid = await chargeThroughProvider(
            {
              subscriptionId: st.subscriptionId,
              userId: st.userId,
              paymentMethodId: st.paymentMethodId,
              amountMinor,
              currency: terms.currency,
              period: st.periodIndex,
              purpose: 'upgrade',
              idempotencyKey,
            },
            has('charges-as-local-activities'),
          );
          extra = { charge: { idempotencyKey, amountMinor, result: paid } };
          if (paid.outcome === 'declined') {
            await record(st, st.status, `upgrade to ${plan} declined: ${paid.code}`, extra);
            throw refuse(
              BillingFailure.PaymentDeclined,
              `The upgrade charge was declined (${paid.code}); the plan is unchanged`,
            );
          }
        }
        st.terms = terms;
        st.pendingPlan = null;
        await record(st, st.status, `plan changed to ${plan}`, {
          ...extra,
          message: { topic: 'subscription.plan_changed', data: { plan, prorationMinor: amountMinor } },
        });
        return result('now', amountMinor);
      }),
    {
      validator: ({ plan }) => {
        if (typeof plan !== 'string' || !/^[a-z][a-z0-9_-]{1,40}$/.test(plan))
          throw new Error(`"${plan}" is not a plan name`);
        refuseIfEnded();
      },
    },
  );

  setHandler(
    paymentMethodUpdated,
    ({ paymentMethodId }) =>
      exclusive(async () => {
        const st = live();
        st.paymentMethodId = paymentMethodId;
        await record(st, st.status, 'payment method updated');
        if (st.status === 'past_due') retrySoon = true; // retry at once, not at the next dunning day
        return view();
      }),
    { validator: refuseIfEnded },
  );

  // A new subscription: a trial (period 0), or the first period charged at once.
  if ('start' in input) {
    const start = input.start;
    await exclusive(async () => {
      // The API quotes the plan when it starts the run; runs started before that quote here.
      const terms = start.terms ?? (await quotePlan(start.plan));
      const now = Date.now();
      const trialMs = start.trialDays === undefined ? terms.trialMs : days(start.trialDays);
      s = {
        subscriptionId: start.subscriptionId,
        userId: start.userId,
        paymentMethodId: start.paymentMethodId,
        terms,
        pendingPlan: null,
        status: 'trialing',
        anchor: now + trialMs,
        periodIndex: 0,
        periodStart: now,
        periodEnd: now + trialMs,
        cancelAtPeriodEnd: false,
        version: 0,
      };
      if (start.paidThrough) {
        // Already paid (elsewhere) until then: active, and the renewal falls due at that instant
        // (at once if it has passed: a decline then goes into grace like any renewal).
        const paidUntil = Date.parse(start.paidThrough);
        Object.assign(s, {
          status: 'active',
          anchor: paidUntil,
          periodStart: Math.min(now, paidUntil - 1000),
          periodEnd: paidUntil,
        });
        await record(s, null, `imported, paid through ${start.paidThrough}`);
      } else if (trialMs > 0) {
        await record(s, null, 'trial started', {
          message: { topic: 'subscription.trial_started', data: { trialEnd: iso(s.periodEnd) } },
        });
      } else {
        await charge(s, 0);
      }
    });
  }
  const st = s as SubscriptionState;

  // The rest of this period: updates may arrive; cancel-now ends the wait.
  if (!ended) await condition(() => ended !== undefined, Math.max(0, st.periodEnd - Date.now()));

  if (!ended) {
    await exclusive(async () => {
      if (ended) return;
      if (st.cancelAtPeriodEnd) return finish(st, 'canceled', 'canceled at period end');
      if (st.pendingPlan) {
        st.terms = st.pendingPlan; // the scheduled downgrade starts with the new period
        st.pendingPlan = null;
      }
      await charge(st, 0);
    });
  }

  // Declined: dunning retries on the plan's schedule within the grace, or at once on a new method.
  let attempt = 0;
  let scheduled = 0;
  while (!ended && grace) {
    const g = grace;
    const retries = st.terms.dunningMs.map((d) => st.periodEnd + d);
    while (scheduled < retries.length && (retries[scheduled] as number) < Date.now()) scheduled++;
    g.nextRetry = g.hard ? null : (retries[scheduled] ?? null);
    const wakeAt = Math.min(g.nextRetry ?? g.until, g.until);
    await condition(() => ended !== undefined || retrySoon, Math.max(0, wakeAt - Date.now()));
    if (ended) break;
    const due = retrySoon || (g.nextRetry !== null && Date.now() >= g.nextRetry);
    if (due) {
      if (!retrySoon) scheduled++;
      retrySoon = false;
      attempt += 1;
      await exclusive(async () => {
        if (!ended) await charge(st, attempt);
      });
    } else if (Date.now() >= g.until) {
      await exclusive(() => finish(st, 'expired', 'grace period ended without payment'));
    }
  }

  await condition(allHandlersFinished);
  if (ended) return ended;
  return continueAsNew<typeof subscription>({ state: { ...st, codeVersion: CODE_VERSION } });
}
