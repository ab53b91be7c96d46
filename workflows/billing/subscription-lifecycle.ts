import { Mutex } from 'async-mutex';
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  isCancellation,
  proxyActivities,
  TemporalFailure,
  proxyLocalActivities,
} from '@temporalio/workflow';
import type {
  BillingActivities,
  ChargeInput,
  SubscriptionChange,
} from '../../activities/billing/subscriptions';
import type { ChargeResult } from '../../domain/billing/payments';
import {
  addSpan,
  chargeKey,
  days,
  isExclusive,
  prorate,
  refundKey,
  sameSpan,
  type PlanTerms,
  type SubscriptionStatus,
} from '../../domain/billing/terms';
import {
  BillingFailure,
  type CancelRequest,
  type NewSubscription,
  type PlanChangeResult,
  type SubscriptionEnd,
  type SubscriptionInput,
  type SubscriptionState,
  type SubscriptionView,
} from './contract';

/**
 * One subscription's state, its handlers and the rules that move it; the workflow function in
 * subscription.ts drives it through a period (the shape of Temporal's safe-message-handlers sample). Money moves only through `charge` and `refund`; every state change is written
 * through `record`, in the order decided, so PostgreSQL shows what the workflow decided.
 */

const retry = { initialInterval: '1 second', maximumInterval: '1 minute' } as const;
const { quotePlan } = proxyActivities<BillingActivities>({ startToCloseTimeout: '30 seconds', retry });
// State writes: short PostgreSQL statements, run inside the workflow task that decided them.
const writes = proxyLocalActivities<BillingActivities>({ startToCloseTimeout: '30 seconds', retry });
// A charge's first attempt runs in the deciding task too (a healthy renewal is one task), bounded well
// below the task's 8 s heartbeat so that no update handler runs while it does.
const firstAttempt = proxyLocalActivities<BillingActivities>({
  startToCloseTimeout: '5 seconds',
  retry: { maximumAttempts: 1 },
});
// Later attempts are an ordinary activity with the same key, retried without limit: the task is free,
// so updates and queries are answered while the provider is slow or away (and the UI shows the retries).
const retried = proxyActivities<BillingActivities>({
  startToCloseTimeout: '30 seconds', // above the provider client's own 10 s; a dead worker's attempt ends by then
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

/** Money and writes are never cut short by a cancellation: the step in flight finishes and is recorded. */
const durable = <T>(step: () => Promise<T>): Promise<T> => CancellationScope.nonCancellable(step);

const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();
const refuse = (type: BillingFailure, message: string) =>
  ApplicationFailure.create({ type, message, nonRetryable: true });
/** The failure type an activity raised (local activities' failures arrive unwrapped). */
const failureType = (err: unknown) => {
  const failure = err instanceof ActivityFailure ? err.cause : err;
  return failure instanceof ApplicationFailure ? failure.type : undefined;
};

interface Grace {
  until: number;
  hard: boolean;
  code: string;
  nextRetry: number | null;
}

interface Charged {
  result: ChargeResult;
  /** The catalog's terms of the plan, when the charge's step quoted them. */
  catalogTerms: PlanTerms | null;
  /** The paid change was written with the charge. */
  recorded: boolean;
  /** A cancel arrived while the charge was being made: a successful charge is refunded in full. */
  refundDemanded: boolean;
}

type ChangeExtras = Pick<SubscriptionChange, 'charge' | 'refund' | 'message'>;

export class SubscriptionLifecycle {
  ended: SubscriptionEnd | undefined;
  private grace: Grace | undefined;
  /** A new payment method in grace: charge it now rather than on the next dunning day. */
  private retryNow: { requestedAt: number } | null = null;
  /** The last decline's code until a payment succeeds (the projection shows it, also after an end). */
  private declineCode: string | null = null;
  private dunningAttempts = 0;
  private scheduledRetriesUsed = 0;
  private payment: { refundIfPaid: boolean } | undefined;
  private planChanging = false;
  private opened: boolean;
  private operatorCancel: Promise<void> | undefined;
  /** Writes land in the order they were decided (the version guard keeps only the newest row). */
  private readonly writeOrder = new Mutex();

  private constructor(
    readonly state: SubscriptionState,
    private readonly start: NewSubscription | undefined,
  ) {
    this.opened = start === undefined;
  }

  /** A new subscription (trial, first charge, or imported as paid), or the next period of one. */
  static async create(input: SubscriptionInput): Promise<SubscriptionLifecycle> {
    if ('state' in input) {
      // States of older code lack the newer fields: they continue only after a payment.
      return new SubscriptionLifecycle(
        { paidBefore: true, pendingPrice: null, ...input.state, codeVersion: undefined },
        undefined,
      );
    }
    const start = input.start;
    // The API quotes the plan when it starts the run; starts without a quote ask here.
    const terms = start.terms ?? (await quotePlan(start.plan));
    const now = Date.now();
    // A granted trial stays within the plan's bound (the API refuses more; this holds it anyway).
    const trialMs =
      start.trialDays === undefined
        ? terms.trialMs
        : Math.min(days(start.trialDays), Math.max(terms.maxTrialMs ?? 0, terms.trialMs));
    const base = {
      subscriptionId: start.subscriptionId,
      userId: start.userId,
      paymentMethodId: start.paymentMethodId,
      terms,
      pendingPlan: null,
      pendingPrice: null,
      cancelAtPeriodEnd: false,
      periodIndex: 0,
      version: 0,
    };
    let state: SubscriptionState;
    if (start.adopt) {
      // Adopted as it stands: the row's period and version continue, so charge keys never repeat.
      const { status, periodIndex, periodStart, periodEnd, version } = start.adopt;
      const anchor = status === 'trialing' ? periodEnd : addSpan(periodEnd, terms.period, -periodIndex);
      const paidBefore = status === 'active' || status === 'past_due';
      state = {
        ...base,
        status: status === 'past_due' ? 'active' : status, // charged again at once, as its period ended
        anchor,
        periodIndex,
        periodStart,
        periodEnd,
        version,
        paidBefore,
      };
    } else if (start.paidThrough) {
      // Paid (elsewhere) until then: active, and the renewal falls due at that instant (at once if past).
      const paidUntil = Date.parse(start.paidThrough);
      state = {
        ...base,
        status: 'active',
        anchor: paidUntil,
        periodStart: Math.min(now, paidUntil - 1000),
        periodEnd: paidUntil,
        paidBefore: true,
      };
    } else if (trialMs > 0) {
      state = {
        ...base,
        status: 'trialing',
        anchor: now + trialMs,
        periodStart: now,
        periodEnd: now + trialMs,
      };
    } else {
      // Pending: the first period is charged at once; premium starts when it is paid.
      state = {
        ...base,
        status: 'pending',
        anchor: now,
        periodStart: now,
        periodEnd: addSpan(now, terms.period, 1),
      };
    }
    return new SubscriptionLifecycle({ paidBefore: false, ...state }, start);
  }

  /** What a query sees before the plan is quoted. */
  static startingView(input: SubscriptionInput): SubscriptionView {
    const { subscriptionId, userId, paymentMethodId } = 'start' in input ? input.start : input.state;
    return {
      subscriptionId,
      userId,
      paymentMethodId,
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
      entitled: false,
      paymentInFlight: false,
      endedReason: null,
    };
  }

  // ── The period, as the workflow function drives it ──────────────────────────────────────────────

  /** A new subscription's first write (refused if the user's policies forbid it), then a first charge. */
  async open(): Promise<void> {
    if (this.opened) return;
    const state = this.state;
    const adopted = this.start?.adopt;
    const opening = this.nextChange(
      adopted
        ? adopted.reason
        : state.status === 'trialing'
          ? 'trial started'
          : state.status === 'active'
            ? `imported, paid through ${this.start?.paidThrough}`
            : 'started; first payment due now',
      state.status === 'trialing' && !adopted
        ? { message: { topic: 'subscription.trial_started', data: { trialEnd: iso(state.periodEnd) } } }
        : {},
      adopted ? adopted.status : undefined,
    );
    let answer;
    try {
      // An adoption keeps what exists: no policy decides again over a subscription already held.
      answer = await this.inOrder(() =>
        writes.openSubscription({
          opening,
          trial: state.status === 'trialing' && !adopted,
          exclusive: isExclusive(state.terms) && !adopted,
        }),
      );
    } catch (err) {
      if (failureType(err) !== BillingFailure.UnknownUser) throw err;
      answer = { opened: false, reason: `refused: user ${state.userId} does not exist` } as const;
    }
    this.opened = true;
    if (!answer.opened) {
      state.status = 'canceled';
      this.ended = { subscriptionId: state.subscriptionId, status: 'canceled', reason: answer.reason };
      return;
    }
    if (state.status === 'pending') await this.chargePeriod(0, state.periodStart);
  }

  /** The rest of the period: updates may arrive; an end (a cancel now) stops the wait. */
  async untilPeriodEnd(): Promise<void> {
    if (this.ended) return;
    await condition(() => this.ended !== undefined, Math.max(0, this.state.periodEnd - Date.now()));
  }

  /** The period is over: end it if asked to, else charge the next one (with a scheduled downgrade or price). */
  async renew(): Promise<void> {
    if (this.ended) return;
    await condition(() => !this.planChanging); // a plan change being made finishes in the old period
    if (this.ended) return;
    const state = this.state;
    if (state.cancelAtPeriodEnd) return this.end('canceled', 'canceled at period end');
    if (state.pendingPlan) {
      state.terms = state.pendingPlan; // the scheduled downgrade starts with the new period
      state.pendingPlan = null;
      state.pendingPrice = null;
    } else if (state.pendingPrice?.plan === state.terms.plan) {
      state.terms = { ...state.terms, priceMinor: state.pendingPrice.priceMinor }; // announced a period ago
      state.pendingPrice = null;
    }
    await this.chargePeriod(0, state.periodEnd);
  }

  /** Declined: dunning retries on the plan's schedule within the grace, or at once on a new method. */
  async dun(): Promise<void> {
    while (!this.ended && this.grace) {
      const grace = this.grace;
      const wakeAt = Math.min(grace.nextRetry ?? grace.until, grace.until);
      await condition(
        () => this.ended !== undefined || this.retryNow !== null,
        Math.max(0, wakeAt - Date.now()),
      );
      if (this.ended) return;
      const scheduledRetryDue = grace.nextRetry !== null && Date.now() >= grace.nextRetry;
      if (this.retryNow || scheduledRetryDue) {
        const firstUseAt = this.retryNow?.requestedAt ?? (grace.nextRetry as number);
        if (!this.retryNow) this.scheduledRetriesUsed++;
        this.retryNow = null;
        this.dunningAttempts += 1;
        await this.chargePeriod(this.dunningAttempts, firstUseAt);
      } else if (Date.now() >= grace.until) {
        await this.end('expired', 'grace period ended without payment');
      }
    }
  }

  /** Every payment, refund and write in flight finished, and every handler answered. */
  async settled(): Promise<void> {
    await this.operatorCancel;
    await condition(() => allHandlersFinished() && !this.payment && !this.writeOrder.isLocked());
  }

  /** What the next run starts from. */
  continued(codeVersion: number): SubscriptionState {
    return { ...this.state, codeVersion };
  }

  // ── Handlers ─────────────────────────────────────────────────────────────────────────────────────

  view(): SubscriptionView {
    const state = this.state;
    const live = !this.ended;
    const next =
      !live || state.cancelAtPeriodEnd || state.status === 'pending'
        ? null
        : this.grace
          ? this.grace.nextRetry
          : state.periodEnd;
    return {
      subscriptionId: state.subscriptionId,
      userId: state.userId,
      paymentMethodId: state.paymentMethodId,
      status: this.opened ? state.status : 'pending',
      plan: state.terms.plan,
      priceMinor: state.terms.priceMinor,
      currency: state.terms.currency,
      pendingPlan: state.pendingPlan?.plan ?? null,
      periodIndex: state.periodIndex,
      periodStart: iso(state.periodStart),
      periodEnd: iso(state.periodEnd),
      cancelAtPeriodEnd: state.cancelAtPeriodEnd,
      nextChargeAt: iso(next),
      nextChargeMinor: next === null ? null : this.nextPrice(),
      graceUntil: iso(live ? this.grace?.until : null),
      lastDeclineCode: this.declineCode,
      entitled: this.entitled(),
      paymentInFlight: this.payment !== undefined || state.status === 'pending',
      endedReason: this.ended?.reason ?? null,
    };
  }

  /** A plan change's validator: ended, starting, past due, or a payment being made → refused at once. */
  refusePlanChange(): void {
    this.mustBeLive();
    this.refuseWhilePaying();
    if (this.state.status === 'past_due')
      throw refuse(
        BillingFailure.PastDue,
        'The subscription is past due: update the payment method before changing plan',
      );
  }

  /** Update validators: refused before anything reaches the history. */
  refuseIfEnded(): void {
    if (this.ended)
      throw refuse(
        BillingFailure.SubscriptionEnded,
        `The subscription is ${this.ended.status}: ${this.ended.reason}`,
      );
  }

  /**
   * Cancel at the period end (access runs to the end of what was paid) or now (no refund). While a charge
   * is being made, a cancel ends the subscription now and the charge, if it succeeds, is refunded in full.
   * In grace or before the first payment there is no paid period to run out: it ends now.
   */
  async cancel({ atPeriodEnd, by }: CancelRequest): Promise<SubscriptionView> {
    this.mustBeLive();
    const state = this.state;
    const who = by === 'operator' ? ' by an operator' : '';
    if (this.payment) {
      this.payment.refundIfPaid = true;
      await this.end('canceled', `canceled${who} while a payment was being made (refunded if it succeeds)`);
    } else if (atPeriodEnd && state.status !== 'past_due' && state.status !== 'pending') {
      if (!state.cancelAtPeriodEnd) {
        state.cancelAtPeriodEnd = true;
        await this.record(state.status, `cancel at period end requested${who}`, {
          message: { topic: 'subscription.cancel_scheduled', data: { periodEnd: iso(state.periodEnd) } },
        });
      }
    } else {
      await this.end(
        'canceled',
        atPeriodEnd ? `canceled${who} while past due` : `canceled immediately${who}`,
      );
    }
    return this.view();
  }

  /**
   * A cancellation of the run (Web UI, CLI, API) is a cancel now by an operator, in a scope no
   * cancellation reaches: the charge in flight finishes (and is refunded), the end is recorded.
   */
  cancelByOperator(): void {
    if (this.ended || this.operatorCancel) return;
    this.operatorCancel = durable(async () => {
      await condition(() => this.opened);
      if (!this.ended) await this.cancel({ atPeriodEnd: false, by: 'operator' });
    });
  }

  /**
   * Upgrades take effect now and pay the difference for the rest of the period (prorated to the
   * millisecond, rounded half up); downgrades wait for the period end; a trial changes freely. Refused
   * while past due, while a payment or another plan change is being made, and across currencies or periods.
   */
  async changePlan({ plan }: { plan: string }): Promise<PlanChangeResult> {
    this.refusePlanChange();
    this.planChanging = true;
    try {
      let terms: PlanTerms;
      try {
        terms = await durable(() => quotePlan(plan));
      } catch (err) {
        const cause = err instanceof ActivityFailure ? err.cause : err;
        throw refuse(BillingFailure.UnknownPlan, cause instanceof Error ? cause.message : String(cause));
      }
      this.mustBeLive(); // it may have ended while the plan was quoted
      if (this.payment)
        throw refuse(BillingFailure.PaymentInFlight, 'A payment is being made; try again in a moment');
      const state = this.state;
      if (terms.currency !== state.terms.currency || !sameSpan(terms.period, state.terms.period))
        throw refuse(
          BillingFailure.IncompatiblePlan,
          `Plan ${plan} bills in another currency or period; cancel and subscribe to it instead`,
        );
      const now = Date.now();
      const answer = (effective: 'now' | 'next_period', prorationMinor = 0): PlanChangeResult => ({
        plan,
        effective,
        effectiveAt: iso(effective === 'now' ? now : state.periodEnd) as string,
        prorationMinor,
        subscription: this.view(),
      });
      if (plan === state.terms.plan) {
        if (!state.pendingPlan)
          throw refuse(BillingFailure.SamePlan, `The subscription is already on ${plan}`);
        state.pendingPlan = null; // keeping the current plan withdraws a scheduled downgrade
        await this.record(state.status, 'scheduled plan change withdrawn');
        return answer('now');
      }
      if (state.status === 'active' && terms.priceMinor < state.terms.priceMinor) {
        state.pendingPlan = terms; // the period is paid: a downgrade starts with the next one, no refund
        await this.record(state.status, `downgrade to ${plan} scheduled`, {
          message: {
            topic: 'subscription.plan_change_scheduled',
            data: { plan, effectiveAt: iso(state.periodEnd) },
          },
        });
        return answer('next_period');
      }
      const amountMinor =
        state.status === 'active'
          ? prorate(
              state.terms.priceMinor,
              terms.priceMinor,
              state.periodEnd - now,
              state.periodEnd - state.periodStart,
            )
          : 0;
      let paidExtras: ChangeExtras = {};
      if (amountMinor > 0) {
        const charge: ChargeInput = {
          subscriptionId: state.subscriptionId,
          userId: state.userId,
          paymentMethodId: state.paymentMethodId,
          amountMinor,
          currency: terms.currency,
          period: state.periodIndex,
          purpose: 'upgrade',
          idempotencyKey: chargeKey(state.subscriptionId, state.periodIndex, `change-v${state.version + 1}`),
          firstUseAt: now,
        };
        const charged = await this.charge(charge);
        if (charged.refundDemanded || this.ended) {
          await this.refundIfPaid(charge, charged.result);
          throw refuse(
            BillingFailure.SubscriptionEnded,
            'The subscription was canceled while the upgrade was being paid; nothing is kept',
          );
        }
        paidExtras = {
          charge: { idempotencyKey: charge.idempotencyKey, amountMinor, result: charged.result },
        };
        if (charged.result.outcome === 'declined') {
          await this.record(state.status, `upgrade to ${plan} declined: ${charged.result.code}`, paidExtras);
          throw refuse(
            BillingFailure.PaymentDeclined,
            `The upgrade charge was declined (${charged.result.code}); the plan is unchanged`,
          );
        }
      }
      state.terms = terms;
      state.pendingPlan = null;
      state.pendingPrice = null;
      await this.record(state.status, `plan changed to ${plan}`, {
        ...paidExtras,
        message: { topic: 'subscription.plan_changed', data: { plan, prorationMinor: amountMinor } },
      });
      return answer('now', amountMinor);
    } finally {
      this.planChanging = false;
    }
  }

  /**
   * Another card: recorded at once. In grace (or when the charge being made is declined) the overdue
   * charge is tried on it at once; a charge already being made continues on the previous card.
   */
  async paymentMethodUpdated({ paymentMethodId }: { paymentMethodId: string }): Promise<SubscriptionView> {
    this.mustBeLive();
    const state = this.state;
    state.paymentMethodId = paymentMethodId;
    if (state.status === 'past_due' || this.payment) this.retryNow = { requestedAt: Date.now() };
    await this.record(
      state.status,
      this.payment
        ? 'payment method updated (the payment being made continues on the previous one)'
        : 'payment method updated',
    );
    return this.view();
  }

  // ── Money ────────────────────────────────────────────────────────────────────────────────────────

  /** Charges period n = periodIndex + 1 (attempt 0 when due, 1… in dunning); paid, it becomes the current period. */
  private async chargePeriod(attempt: number, firstUseAt: number): Promise<void> {
    const state = this.state;
    const period = state.periodIndex + 1;
    const fromStatus = state.status;
    const recovering = this.grace !== undefined;
    const charge: ChargeInput = {
      subscriptionId: state.subscriptionId,
      userId: state.userId,
      paymentMethodId: state.paymentMethodId,
      amountMinor: state.terms.priceMinor,
      currency: state.terms.currency,
      period,
      idempotencyKey: chargeKey(state.subscriptionId, period, attempt),
      firstUseAt,
    };
    const reason = recovering ? 'payment recovered' : `period ${period} paid`;
    const message = {
      topic:
        fromStatus === 'pending'
          ? 'subscription.started'
          : recovering
            ? 'subscription.recovered'
            : 'subscription.renewed',
      data: {
        period,
        amountMinor: charge.amountMinor,
        currency: charge.currency,
        periodEnd: iso(addSpan(state.anchor, state.terms.period, period)),
      },
    };
    const charged = await this.charge(charge, () => this.paidChange(period, fromStatus, reason, message));
    const chargeRecord = {
      charge: {
        idempotencyKey: charge.idempotencyKey,
        amountMinor: charge.amountMinor,
        result: charged.result,
      },
    };
    if (charged.refundDemanded || this.ended) return this.refundIfPaid(charge, charged.result);
    if (charged.result.outcome === 'succeeded') {
      this.becomePaid(period);
      if (!charged.recorded) await this.record(fromStatus, reason, { ...chargeRecord, message });
      return this.takeCatalogTerms(charged.catalogTerms);
    }
    return this.declined(fromStatus, chargeRecord, charged.result);
  }

  /** The change that writes period n as paid (with the version it will have), decided before charging. */
  private paidChange(
    period: number,
    fromStatus: SubscriptionStatus,
    reason: string,
    message: ChangeExtras['message'],
  ): SubscriptionChange {
    const saved = {
      state: { ...this.state },
      grace: this.grace,
      retryNow: this.retryNow,
      declineCode: this.declineCode,
    };
    this.becomePaid(period);
    this.state.version += 1; // reserved: writes decided while the charge runs come after it
    const change = this.changeOf(fromStatus, reason, { message });
    Object.assign(this.state, saved.state, { version: this.state.version });
    this.grace = saved.grace;
    this.retryNow = saved.retryNow;
    this.declineCode = saved.declineCode;
    return change;
  }

  private becomePaid(period: number): void {
    const state = this.state;
    Object.assign(state, {
      status: 'active',
      periodIndex: period,
      periodStart: addSpan(state.anchor, state.terms.period, period - 1),
      periodEnd: addSpan(state.anchor, state.terms.period, period),
      paidBefore: true,
    });
    this.grace = undefined;
    this.retryNow = null;
    this.declineCode = null;
  }

  /**
   * Makes a charge: the first attempt in this task (with the paid change written in the same step, when
   * given), later attempts as an ordinary activity. A cancel meanwhile marks it to be refunded if paid.
   */
  private async charge(input: ChargeInput, paidChange?: () => SubscriptionChange): Promise<Charged> {
    const ifPaid = paidChange?.();
    const payment = { refundIfPaid: false };
    this.payment = payment;
    try {
      try {
        const first = await this.inOrder(() =>
          firstAttempt.chargeForPeriod({
            charge: input,
            ifPaid,
            quote: ifPaid ? this.state.terms.plan : undefined,
          }),
        );
        return {
          ...first,
          recorded: ifPaid !== undefined && first.result.outcome === 'succeeded',
          refundDemanded: payment.refundIfPaid,
        };
      } catch (err) {
        if (!(err instanceof TemporalFailure) || isCancellation(err)) throw err;
        // Slow or away: the same charge, under the same key, continues as an ordinary activity.
      }
      const result = await durable(() => retried.chargeSubscription(input));
      return { result, catalogTerms: null, recorded: false, refundDemanded: payment.refundIfPaid };
    } finally {
      this.payment = undefined;
    }
  }

  /** A charge made for a subscription that was canceled meanwhile goes back in full, once. */
  private async refundIfPaid(charge: ChargeInput, result: ChargeResult): Promise<void> {
    if (result.outcome !== 'succeeded' || charge.amountMinor === 0) return;
    const idempotencyKey = refundKey(charge.idempotencyKey);
    const refund = await durable(() =>
      retried.refundPayment({
        subscriptionId: charge.subscriptionId,
        idempotencyKey,
        chargeReference: result.reference,
        amountMinor: charge.amountMinor,
      }),
    );
    const paid = { idempotencyKey: charge.idempotencyKey, amountMinor: charge.amountMinor, result };
    if (!refund.refunded) {
      // Reconciliation flags a kept charge of an ended subscription; the reason is in the history.
      await this.record(
        this.state.status,
        `charge ${charge.idempotencyKey} made after the cancel; refund refused: ${refund.reason}`,
        { charge: paid },
      );
      return;
    }
    await this.record(
      this.state.status,
      `charge ${charge.idempotencyKey} made after the cancel, refunded in full`,
      {
        charge: paid,
        refund: {
          idempotencyKey,
          amountMinor: refund.amountMinor,
          reference: refund.reference,
          refundOf: charge.idempotencyKey,
        },
        message: {
          topic: 'subscription.refunded',
          data: { amountMinor: refund.amountMinor, currency: charge.currency },
        },
      },
    );
  }

  /** A declined charge: a first payment ends the subscription; otherwise grace with dunning. */
  private async declined(
    fromStatus: SubscriptionStatus,
    chargeRecord: ChangeExtras,
    result: Extract<ChargeResult, { outcome: 'declined' }>,
  ): Promise<void> {
    const state = this.state;
    const period = state.periodIndex + 1;
    this.declineCode = result.code;
    if (fromStatus === 'pending') {
      // A first payment that fails never starts premium: the subscription ends at once.
      return this.end('expired', `initial payment declined: ${result.code}`, chargeRecord);
    }
    this.grace ??= {
      until: state.periodEnd + state.terms.graceMs,
      hard: false,
      code: result.code,
      nextRetry: null,
    };
    this.grace.hard = result.retry === 'hard';
    this.grace.code = result.code;
    this.grace.nextRetry = this.nextDunningRetry();
    state.status = 'past_due';
    // After a paid period grace keeps premium; after a trial it does not (entitled() says which).
    await this.record(fromStatus, `payment declined (${result.retry}): ${result.code}`, {
      ...chargeRecord,
      message: {
        topic: 'subscription.payment_failed',
        data: { period, code: result.code, retry: result.retry, graceUntil: iso(this.grace.until) },
      },
    });
  }

  /** The next scheduled dunning retry still ahead (none after a hard decline: only a new method is tried). */
  private nextDunningRetry(): number | null {
    if (!this.grace || this.grace.hard) return null;
    const retries = this.state.terms.dunningMs.map((offset) => this.state.periodEnd + offset);
    while (
      this.scheduledRetriesUsed < retries.length &&
      (retries[this.scheduledRetriesUsed] as number) < Date.now()
    )
      this.scheduledRetriesUsed++;
    return retries[this.scheduledRetriesUsed] ?? null;
  }

  /**
   * The catalog's current terms reach the subscription at its renewal: grace and dunning at once, a new
   * price one period later, announced now. A plan gone from the catalog, or moved to another currency
   * or period, keeps the terms it was sold with.
   */
  private async takeCatalogTerms(catalog: PlanTerms | null): Promise<void> {
    const state = this.state;
    if (!catalog || catalog.plan !== state.terms.plan || catalog.currency !== state.terms.currency) return;
    if (!sameSpan(catalog.period, state.terms.period)) return;
    state.terms = { ...catalog, priceMinor: state.terms.priceMinor };
    if (catalog.priceMinor === state.terms.priceMinor) {
      state.pendingPrice = null; // a change withdrawn before it took effect
      return;
    }
    if (state.pendingPrice?.priceMinor === catalog.priceMinor) return;
    state.pendingPrice = { plan: catalog.plan, priceMinor: catalog.priceMinor };
    await this.record(
      state.status,
      `price ${catalog.priceMinor} announced for the renewal after this period`,
      {
        message: {
          topic: 'subscription.price_change_scheduled',
          data: {
            priceMinor: catalog.priceMinor,
            currency: catalog.currency,
            effectiveAt: iso(state.periodEnd),
          },
        },
      },
    );
  }

  // ── State and its writes ───────────────────────────────────────────────────────────────────────────

  private entitled(): boolean {
    const status = this.state.status;
    return (
      status === 'trialing' ||
      status === 'active' ||
      (status === 'past_due' && this.state.paidBefore !== false)
    );
  }

  private nextPrice(): number {
    const state = this.state;
    if (state.pendingPlan) return state.pendingPlan.priceMinor;
    if (state.pendingPrice?.plan === state.terms.plan) return state.pendingPrice.priceMinor;
    return state.terms.priceMinor;
  }

  private mustBeLive(): void {
    this.refuseIfEnded();
    if (!this.opened)
      throw refuse(
        BillingFailure.SubscriptionStarting,
        'The subscription is still starting; try again in a moment',
      );
  }

  private refuseWhilePaying(): void {
    if (this.payment || this.planChanging || this.state.status === 'pending')
      throw refuse(
        BillingFailure.PaymentInFlight,
        'A payment or plan change is being made; try again in a moment',
      );
  }

  /** Ends the subscription (recorded with its message); nothing is charged after it. */
  private end(status: 'expired' | 'canceled', reason: string, extras: ChangeExtras = {}): Promise<void> {
    const state = this.state;
    const fromStatus = state.status;
    state.status = status;
    this.ended = { subscriptionId: state.subscriptionId, status, reason };
    this.grace = undefined;
    return this.record(fromStatus, reason, {
      ...extras,
      message: { topic: `subscription.${status}`, data: { reason } },
    });
  }

  /** Writes the state as its next version; writes land in the order they were decided. */
  private record(fromStatus: SubscriptionStatus, reason: string, extras: ChangeExtras = {}): Promise<void> {
    const change = this.nextChange(reason, extras, fromStatus);
    return this.inOrder(() => writes.recordSubscriptionChange(change));
  }

  private nextChange(
    reason: string,
    extras: ChangeExtras,
    fromStatus?: SubscriptionStatus,
  ): SubscriptionChange {
    this.state.version += 1;
    return this.changeOf(fromStatus ?? null, reason, extras);
  }

  private inOrder<T>(step: () => Promise<T>): Promise<T> {
    return durable(() => this.writeOrder.runExclusive(step));
  }

  private changeOf(
    fromStatus: SubscriptionStatus | null,
    reason: string,
    extras: ChangeExtras,
  ): SubscriptionChange {
    const state = this.state;
    const shown = this.view();
    return {
      subscriptionId: state.subscriptionId,
      userId: state.userId,
      version: state.version,
      fromStatus: fromStatus ?? null,
      status: state.status,
      reason,
      terms: state.terms,
      pendingPlan: state.pendingPlan?.plan ?? null,
      periodIndex: state.periodIndex,
      periodStart: state.periodStart,
      periodEnd: state.periodEnd,
      graceUntil: state.status === 'past_due' ? (this.grace?.until ?? null) : null,
      cancelAtPeriodEnd: state.cancelAtPeriodEnd,
      paymentMethodId: state.paymentMethodId,
      entitled: this.entitled(),
      shown: {
        nextChargeAt: shown.nextChargeAt === null ? null : Date.parse(shown.nextChargeAt),
        nextChargeMinor: shown.nextChargeMinor,
        lastDeclineCode: shown.lastDeclineCode,
        paymentInFlight: shown.paymentInFlight ?? false,
        endedReason: shown.endedReason ?? null,
      },
      ...extras,
    };
  }
}
