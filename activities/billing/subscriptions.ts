import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { fromMinor } from '../../domain/billing/money';
import type { PlanCatalog } from '../../domain/billing/plans';
import type { ReconciliationDeps } from './reconciliation';
import { planFamily, type PlanTerms, type SubscriptionStatus } from '../../domain/billing/terms';
import {
  ProviderRequestError,
  type ChargeResult,
  type PaymentProvider,
  type RefundResult,
} from '../../domain/billing/payments';

/**
 * Billing activities of the subscription workflow. Each is idempotent: charges and refunds carry the
 * workflow's idempotency keys to the provider; state writes carry the workflow's version number and
 * natural keys.
 */

export interface BillingDeps {
  pool: DatabasePool;
  provider: PaymentProvider;
  plans: PlanCatalog;
  /** How long the provider remembers an idempotency key (default 24 h): older keys are looked up first. */
  keyLifetimeMs?: number;
  /** Reconciliation's own needs (a Temporal client, its policy, the metrics registry); without them it is not served. */
  reconciliation?: Omit<ReconciliationDeps, 'pool' | 'provider' | 'plans'>;
}

export interface ChargeInput {
  subscriptionId: string;
  userId: string;
  paymentMethodId: string;
  amountMinor: number;
  currency: string;
  period: number;
  /** A renewal pays for the period; an upgrade pays the prorated difference within it. */
  purpose?: 'renewal' | 'upgrade';
  idempotencyKey: string;
  /**
   * The earliest time this key can have reached the provider (its due time). A charge asked for a key
   * lifetime later first looks the charge up, since the provider may have forgotten the key.
   */
  firstUseAt?: number;
}

export interface RefundInput {
  subscriptionId: string;
  /** `refund:<the charge's key>`: one refund per charge, however often asked. */
  idempotencyKey: string;
  chargeReference: string;
  amountMinor: number;
}

/** A refund the provider would not make (already refunded elsewhere, charge unknown): a result, not a failure. */
export type RefundOutcome = ({ refunded: true } & RefundResult) | { refunded: false; reason: string };

/** One state change of a subscription, written in one PostgreSQL statement. */
export interface SubscriptionChange {
  subscriptionId: string;
  userId: string;
  /** Grows by one per change within a subscription: older retries never overwrite newer state. */
  version: number;
  fromStatus: SubscriptionStatus | null;
  status: SubscriptionStatus;
  reason: string;
  terms: PlanTerms;
  pendingPlan: string | null;
  periodIndex: number;
  periodStart: number;
  periodEnd: number;
  graceUntil: number | null;
  cancelAtPeriodEnd: boolean;
  paymentMethodId: string;
  /** Grants premium (absent in changes of older code: any live status but pending does). */
  entitled?: boolean;
  /** What the API shows without asking the workflow (absent in changes of older code). */
  shown?: {
    nextChargeAt: number | null;
    nextChargeMinor: number | null;
    lastDeclineCode: string | null;
    paymentInFlight: boolean;
    endedReason: string | null;
  };
  /** The charge this change records, if any. */
  charge?: { idempotencyKey: string; amountMinor: number; result: ChargeResult };
  /** The refund this change records, if any. */
  refund?: { idempotencyKey: string; amountMinor: number; reference: string; refundOf: string };
  /** A message to the user, sent through the outbox. IDs and amounts only. */
  message?: { topic: string; data: Record<string, string | number | null> };
}

/** A charge and the state change to write with it if it succeeds (the renewal's common path). */
export interface ChargeAndRecordInput {
  charge: ChargeInput;
  /** Written, with the charge, only when the charge succeeded; a decline is written by the workflow. */
  ifPaid: Omit<SubscriptionChange, 'charge'>;
}

export interface ChargeForPeriodInput {
  charge: ChargeInput;
  /** Written, with the charge, only when the charge succeeded (a renewal); absent for an upgrade. */
  ifPaid?: Omit<SubscriptionChange, 'charge'>;
  /** Also quote this plan from the catalog, so catalog changes reach the subscription at its renewal. */
  quote?: string;
}

export interface ChargeForPeriodResult {
  result: ChargeResult;
  /** The plan's current terms in the catalog; null when the plan has left it (its terms stay). */
  catalogTerms: PlanTerms | null;
}

/** A new subscription's first write, under the user's policies (one live exclusive plan, one trial a family). */
export interface OpenInput {
  opening: SubscriptionChange;
  /** Whether the opening starts a trial (recorded per user and plan family). */
  trial: boolean;
  exclusive: boolean;
}

export type OpenResult =
  { opened: true } | { opened: false; reason: string; conflictWith: string | null; written: boolean };

const MethodRow = z.object({ provider_token: z.string(), status: z.string() });
const Known = z.object({ ok: z.boolean() });
const Conflict = z.object({ subscription_id: z.string() });

const ts = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
/** A minor-unit amount as the NUMERIC text of its currency (1099 EUR → 10.99, 980 JPY → 980). */
const money = (minor: number, currency: string) => sql.fragment`${fromMinor(minor, currency)}::numeric`;
const LIVE = sql.fragment`('pending', 'trialing', 'active', 'past_due')`;

/**
 * Writes one change in one statement (atomic, one round trip): the subscription row (insert, or newer
 * version only), and — when this change moved the row — its history row, the user's tier (premium
 * while any subscription is entitled) and the outbox message. Payments are written whenever the
 * subscription exists: money that moved is always recorded, even by a change a newer one superseded.
 * Running it again writes nothing new; an unknown user writes nothing at all.
 */
export async function writeSubscriptionChange(
  db: CommonQueryMethods,
  change: SubscriptionChange,
): Promise<boolean> {
  const entitled = change.entitled ?? ['trialing', 'active', 'past_due'].includes(change.status);
  const paymentMethodId = change.paymentMethodId || null; // rows from before workflows may have none
  const shown = change.shown;
  // A free period moves no money: nothing to record or reconcile.
  const charge = change.charge && change.charge.amountMinor > 0 ? change.charge : undefined;
  const result = charge?.result;
  const chargePart = charge
    ? sql.fragment`,
        charge_key AS (
          INSERT INTO payment_idempotency_keys (idempotency_key, transaction_id, created_at)
          SELECT ${charge.idempotencyKey}, gen_random_uuid(), now() FROM known WHERE known.ok
          ON CONFLICT (idempotency_key) DO NOTHING
          RETURNING transaction_id),
        charge_row AS (
          INSERT INTO payment_transactions (transaction_id, created_at, user_id, subscription_id,
            payment_method_id, kind, amount, currency, status, decline_code, idempotency_key,
            provider_reference)
          SELECT charge_key.transaction_id, now(), ${change.userId}, ${change.subscriptionId}, ${paymentMethodId},
            'charge', ${money(charge.amountMinor, change.terms.currency)}, ${change.terms.currency},
            ${result?.outcome === 'succeeded' ? 'succeeded' : 'declined'},
            ${result?.outcome === 'declined' ? result.code : null}, ${charge.idempotencyKey}, ${result?.reference ?? null}
          FROM charge_key)`
    : sql.fragment``;
  const refund = change.refund;
  const refundPart = refund
    ? sql.fragment`,
        refund_key AS (
          INSERT INTO payment_idempotency_keys (idempotency_key, transaction_id, created_at)
          SELECT ${refund.idempotencyKey}, gen_random_uuid(), now() FROM known WHERE known.ok
          ON CONFLICT (idempotency_key) DO NOTHING
          RETURNING transaction_id),
        refund_row AS (
          INSERT INTO payment_transactions (transaction_id, created_at, user_id, subscription_id,
            payment_method_id, kind, amount, currency, status, idempotency_key, provider_reference, refund_of)
          SELECT refund_key.transaction_id, now(), ${change.userId}, ${change.subscriptionId}, ${paymentMethodId},
            'refund', ${money(refund.amountMinor, change.terms.currency)}, ${change.terms.currency}, 'succeeded',
            ${refund.idempotencyKey}, ${refund.reference}, ${refund.refundOf}
          FROM refund_key)`
    : sql.fragment``;
  const messagePart = change.message
    ? sql.fragment`,
        message AS (
          INSERT INTO outbox_messages (message_key, user_id, topic, payload)
          SELECT ${`${change.subscriptionId}:${change.version}`}, ${change.userId}, ${change.message.topic},
            ${sql.jsonb({ subscriptionId: change.subscriptionId, ...change.message.data })}
          FROM known WHERE known.applied
          ON CONFLICT (message_key) DO NOTHING)`
    : sql.fragment``;
  return db.oneFirst(sql.type(Known)`
    WITH applied AS (
      INSERT INTO subscriptions (
        subscription_id, user_id, plan, status, country, currency, price, price_minor,
        current_period_start, current_period_end, grace_until, cancel_at_period_end,
        payment_method_id, period_index, pending_plan, state_version, updated_at,
        entitled, exclusive, next_charge_at, next_charge_minor, last_decline_code, ended_reason,
        payment_in_flight)
      SELECT ${change.subscriptionId}, u.user_id, ${change.terms.plan}, ${change.status}, u.country,
        ${change.terms.currency}, ${money(change.terms.priceMinor, change.terms.currency)}, ${change.terms.priceMinor},
        ${ts(change.periodStart)}, ${ts(change.periodEnd)}, ${ts(change.graceUntil)}, ${change.cancelAtPeriodEnd},
        ${paymentMethodId}, ${change.periodIndex}, ${change.pendingPlan}, ${change.version}, now(),
        ${entitled}, ${change.terms.exclusive ?? true}, ${ts(shown?.nextChargeAt ?? null)},
        ${shown?.nextChargeMinor ?? null}, ${shown?.lastDeclineCode ?? null}, ${shown?.endedReason ?? null},
        ${shown?.paymentInFlight ?? false}
      FROM users u WHERE u.user_id = ${change.userId}
      ON CONFLICT (subscription_id) DO UPDATE SET
        plan = EXCLUDED.plan, status = EXCLUDED.status, currency = EXCLUDED.currency,
        price = EXCLUDED.price, price_minor = EXCLUDED.price_minor,
        current_period_start = EXCLUDED.current_period_start,
        current_period_end = EXCLUDED.current_period_end, grace_until = EXCLUDED.grace_until,
        cancel_at_period_end = EXCLUDED.cancel_at_period_end,
        payment_method_id = EXCLUDED.payment_method_id, period_index = EXCLUDED.period_index,
        pending_plan = EXCLUDED.pending_plan, state_version = EXCLUDED.state_version,
        entitled = EXCLUDED.entitled, exclusive = EXCLUDED.exclusive,
        next_charge_at = EXCLUDED.next_charge_at, next_charge_minor = EXCLUDED.next_charge_minor,
        last_decline_code = EXCLUDED.last_decline_code, ended_reason = EXCLUDED.ended_reason,
        payment_in_flight = EXCLUDED.payment_in_flight, updated_at = now()
      WHERE subscriptions.state_version < EXCLUDED.state_version
      RETURNING subscription_id),
    -- Applied now, or the subscription exists already (this change is a retry or was superseded).
    known AS (
      SELECT EXISTS (SELECT 1 FROM applied) AS applied,
        EXISTS (SELECT 1 FROM applied)
          OR EXISTS (SELECT 1 FROM subscriptions WHERE subscription_id = ${change.subscriptionId}) AS ok),
    history AS (
      INSERT INTO subscription_history (subscription_id, from_status, to_status, plan, reason, version)
      SELECT ${change.subscriptionId}, ${change.fromStatus}, ${change.status}, ${change.terms.plan}, ${change.reason}, ${change.version}
      FROM known WHERE known.applied
      ON CONFLICT (subscription_id, version) WHERE version IS NOT NULL DO NOTHING),
    -- Premium is the entitlement of any entitled subscription; the last one losing it makes the user
    -- free. (The statement's snapshot predates the row written above, hence this one's apart.)
    tier AS (
      UPDATE users SET tier = CASE
        WHEN ${entitled} OR EXISTS (
          SELECT 1 FROM subscriptions WHERE user_id = ${change.userId}
            AND subscription_id <> ${change.subscriptionId} AND entitled)
        THEN 'premium' ELSE 'free' END
      WHERE user_id = ${change.userId} AND (SELECT applied FROM known))${chargePart}${refundPart}${messagePart}
    SELECT ok FROM known`);
}

export function createBillingActivities({ pool, provider, plans, keyLifetimeMs = 86_400_000 }: BillingDeps) {
  /**
   * Charges through the provider. A decline is a result; so is a request the provider refuses for good
   * (a deleted card, a key reused): a hard decline of this method, with the provider's code, so the
   * subscription waits for another method instead of failing. Timeouts and 5xx throw and are retried
   * with the same key. A free charge never reaches the provider.
   */
  async function chargeThroughProvider(input: ChargeInput): Promise<ChargeResult> {
    if (input.amountMinor === 0) return { outcome: 'succeeded', reference: 'free' };
    const method = await pool.maybeOne(sql.type(MethodRow)`
      SELECT provider_token, status FROM payment_methods
      WHERE payment_method_id = ${input.paymentMethodId} AND user_id = ${input.userId}`);
    if (!method || method.status !== 'active') {
      return { outcome: 'declined', reference: 'none', code: 'payment_method_missing', retry: 'hard' };
    }
    // Past the provider's key lifetime the key may be forgotten: find the charge before making it again.
    if (input.firstUseAt !== undefined && Date.now() - input.firstUseAt >= keyLifetimeMs * 0.9) {
      const earlier = await provider.findCharge(input.idempotencyKey);
      if (earlier) {
        log.info('charge found at the provider by its key', { key: input.idempotencyKey });
        return earlier.outcome === 'succeeded'
          ? { outcome: 'succeeded', reference: earlier.reference }
          : {
              outcome: 'declined',
              reference: earlier.reference,
              code: earlier.declineCode ?? 'declined',
              retry: earlier.declineRetry ?? 'hard',
            };
      }
    }
    try {
      const result = await provider.charge({
        idempotencyKey: input.idempotencyKey,
        token: method.provider_token,
        amountMinor: input.amountMinor,
        currency: input.currency,
        // The provider's records name what was paid for: period "2", or "2/upgrade" for a proration.
        metadata: {
          subscription_id: input.subscriptionId,
          period: input.purpose === 'upgrade' ? `${input.period}/upgrade` : String(input.period),
        },
        // A timed-out attempt stops here (the retry finds the charge by its key) rather than write late.
        signal: Context.current().cancellationSignal,
      });
      log.info('charge answered', { key: input.idempotencyKey, outcome: result.outcome });
      return result;
    } catch (err) {
      if (err instanceof ProviderRequestError) {
        log.warn('provider refused the charge; a hard decline of this method', { code: err.code });
        return { outcome: 'declined', reference: 'none', code: err.code, retry: 'hard' };
      }
      throw err; // TransientProviderError and the unexpected: retried with the same key
    }
  }

  const unknownUser = (userId: string) =>
    ApplicationFailure.nonRetryable(
      `User ${userId} does not exist; the subscription cannot be recorded`,
      'UnknownUser',
    );

  const activities = {
    /** The current terms of a plan from the catalog; an unknown plan is a person's mistake, not retried. */
    async quotePlan(plan: string): Promise<PlanTerms> {
      const terms = plans.get(plan);
      if (!terms) {
        throw ApplicationFailure.nonRetryable(
          `Unknown plan "${plan}"; known plans: ${plans.names().join(', ')}`,
          'UnknownPlan',
        );
      }
      return terms;
    },

    /** Charges one period (or a proration) through the provider; a decline is a result. */
    async chargeSubscription(input: ChargeInput): Promise<ChargeResult> {
      return chargeThroughProvider(input);
    },

    /** Writes one change (see writeSubscriptionChange); an unknown user is a failure a person must look at. */
    async recordSubscriptionChange(change: SubscriptionChange): Promise<void> {
      if (!(await writeSubscriptionChange(pool, change))) throw unknownUser(change.userId);
    },

    /**
     * Charges, and when the charge succeeds writes the change it pays for: a paid renewal is then one
     * local activity, not two. Run again (a retry, a worker that died between the two steps), the charge
     * repeats with the same idempotency key, so the provider answers with the first result, and the write
     * is version-guarded: nothing happens twice.
     */
    async chargeAndRecordIfPaid({ charge, ifPaid }: ChargeAndRecordInput): Promise<ChargeResult> {
      const result = await chargeThroughProvider(charge);
      if (result.outcome === 'succeeded') {
        await activities.recordSubscriptionChange({
          ...ifPaid,
          charge: { idempotencyKey: charge.idempotencyKey, amountMinor: charge.amountMinor, result },
        });
      }
      return result;
    },

    /**
     * chargeAndRecordIfPaid that also quotes the plan from the catalog in the same step, so that catalog
     * changes reach the subscription at its renewal without another activity.
     */
    async chargeForPeriod({ charge, ifPaid, quote }: ChargeForPeriodInput): Promise<ChargeForPeriodResult> {
      const result = ifPaid
        ? await activities.chargeAndRecordIfPaid({ charge, ifPaid })
        : await chargeThroughProvider(charge);
      return { result, catalogTerms: quote ? (plans.get(quote) ?? null) : null };
    },

    /** Refunds a charge, once per key. A refund the provider refuses for good is a result with its reason. */
    async refundPayment(input: RefundInput): Promise<RefundOutcome> {
      if (input.chargeReference === 'free' || input.amountMinor === 0)
        return { refunded: true, reference: 'free', amountMinor: 0 };
      try {
        const refund = await provider.refund({
          idempotencyKey: input.idempotencyKey,
          chargeReference: input.chargeReference,
          amountMinor: input.amountMinor,
        });
        log.info('refunded', { key: input.idempotencyKey, reference: refund.reference });
        return { refunded: true, ...refund };
      } catch (err) {
        if (err instanceof ProviderRequestError)
          return { refunded: false, reason: `${err.code}: ${err.message}` };
        throw err;
      }
    },

    /**
     * A new subscription's first write, decided under a per-user lock: refused (and written as canceled,
     * with the reason) when the user already holds a live exclusive subscription or has had a trial of
     * this plan's family; otherwise the opening change and, for a trial, the trial's record.
     */
    async openSubscription({ opening, trial, exclusive }: OpenInput): Promise<OpenResult> {
      const family = planFamily(opening.terms);
      return pool.transaction(async (tx) => {
        await tx.query(sql.unsafe`SELECT pg_advisory_xact_lock(hashtextextended(${opening.userId}, 15))`);
        // Run again after it wrote: the first answer stands. (An adopted row is there at version 0.)
        const mine = await tx.maybeOne(sql.type(
          z.object({ status: z.string(), ended_reason: z.string().nullable(), state_version: z.number() }),
        )`
          SELECT status, ended_reason, state_version FROM subscriptions
          WHERE subscription_id = ${opening.subscriptionId}`);
        if (mine && mine.state_version >= opening.version) {
          return mine.status === 'canceled' && mine.ended_reason?.startsWith('refused')
            ? { opened: false, reason: mine.ended_reason, conflictWith: null, written: true }
            : { opened: true };
        }
        const live = exclusive
          ? await tx.maybeOneFirst(sql.type(Conflict)`
              SELECT subscription_id FROM subscriptions
              WHERE user_id = ${opening.userId} AND exclusive AND status IN ${LIVE}
                AND subscription_id <> ${opening.subscriptionId}
              ORDER BY created_at LIMIT 1`)
          : null;
        const trialTaken = trial
          ? await tx.maybeOneFirst(sql.type(Conflict)`
              SELECT subscription_id FROM subscription_trials
              WHERE user_id = ${opening.userId} AND plan_family = ${family}`)
          : null;
        const reason = live
          ? `refused: the user already has live subscription ${live}; change its plan instead`
          : trialTaken
            ? `refused: the user has had a ${family} trial (subscription ${trialTaken})`
            : null;
        const change: SubscriptionChange = reason
          ? {
              ...opening,
              status: 'canceled',
              entitled: false,
              reason,
              message: undefined,
              charge: undefined,
              shown: {
                nextChargeAt: null,
                nextChargeMinor: null,
                lastDeclineCode: null,
                paymentInFlight: false,
                endedReason: reason,
              },
            }
          : opening;
        if (!(await writeSubscriptionChange(tx, change))) throw unknownUser(opening.userId);
        if (reason) return { opened: false, reason, conflictWith: live ?? trialTaken, written: true };
        if (trial) {
          await tx.query(sql.unsafe`
            INSERT INTO subscription_trials (user_id, plan_family, subscription_id)
            VALUES (${opening.userId}, ${family}, ${opening.subscriptionId}) ON CONFLICT DO NOTHING`);
        }
        return { opened: true };
      });
    },
  };
  return activities;
}

export type BillingActivities = ReturnType<typeof createBillingActivities>;
