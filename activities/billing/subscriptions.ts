import { ApplicationFailure, log } from '@temporalio/activity';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { PlanCatalog } from '../../domain/billing/plans';
import type { PlanTerms, SubscriptionStatus } from '../../domain/billing/terms';
import { ProviderRequestError, type ChargeResult, type PaymentProvider } from '../../domain/billing/payments';

/**
 * Billing activities of the subscription workflow. Each is idempotent: charges carry the workflow's
 * idempotency key to the provider; state writes carry the workflow's version number and natural keys.
 */

export interface BillingDeps {
  pool: DatabasePool;
  provider: PaymentProvider;
  plans: PlanCatalog;
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
}

/** One state change of a subscription, written in one PostgreSQL transaction. */
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
  /** The charge this change records, if any. */
  charge?: { idempotencyKey: string; amountMinor: number; result: ChargeResult };
  /** A message to the user, sent through the outbox. IDs and amounts only. */
  message?: { topic: string; data: Record<string, string | number | null> };
}

const MethodRow = z.object({ provider_token: z.string(), status: z.string() });
const Known = z.object({ ok: z.boolean() });

const minorToNumeric = (minor: number) => sql.fragment`(${minor}::numeric / 100)`;
const ts = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** A charge and the state change to write with it if it succeeds (the renewal's common path). */
export interface ChargeAndRecordInput {
  charge: ChargeInput;
  /** Written, with the charge, only when the charge succeeded; a decline is written by the workflow. */
  ifPaid: Omit<SubscriptionChange, 'charge'>;
}

export function createBillingActivities({ pool, provider, plans }: BillingDeps) {
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

    /**
     * Charges one period (or a proration) through the provider. A decline is a result; timeouts and
     * 5xx throw and are retried with the same idempotency key, so the provider charges at most once.
     */
    async chargeSubscription(input: ChargeInput): Promise<ChargeResult> {
      const method = await pool.maybeOne(sql.type(MethodRow)`
        SELECT provider_token, status FROM payment_methods
        WHERE payment_method_id = ${input.paymentMethodId} AND user_id = ${input.userId}`);
      if (!method || method.status !== 'active') {
        return { outcome: 'declined', reference: 'none', code: 'payment_method_missing', retry: 'hard' };
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
        });
        log.info('charge answered', { key: input.idempotencyKey, outcome: result.outcome });
        return result;
      } catch (err) {
        if (err instanceof ProviderRequestError) {
          throw ApplicationFailure.nonRetryable(
            `The payment provider refused the request (${err.code}): ${err.message}`,
            'ProviderRequestError',
          );
        }
        throw err; // TransientProviderError and the unexpected: retried with the same key
      }
    },

    /**
     * Writes one change in one statement (one transaction, one round trip): the subscription row
     * (insert, or newer version only), its history, the payment transaction, the user's tier (premium
     * while any subscription is live) and the outbox message. Running it again writes nothing new.
     * Every part after the row is written only if the subscription exists (now or already), so an
     * unknown user writes nothing at all.
     */
    async recordSubscriptionChange(c: SubscriptionChange): Promise<void> {
      const charge = c.charge;
      const r = charge?.result;
      const paymentParts = charge
        ? sql.fragment`,
          fresh AS (
            INSERT INTO payment_idempotency_keys (idempotency_key, transaction_id, created_at)
            SELECT ${charge.idempotencyKey}, gen_random_uuid(), now() FROM known WHERE known.ok
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING transaction_id),
          payment AS (
            INSERT INTO payment_transactions (transaction_id, created_at, user_id, subscription_id,
              payment_method_id, kind, amount, currency, status, decline_code, idempotency_key,
              provider_reference)
            SELECT fresh.transaction_id, now(), ${c.userId}, ${c.subscriptionId}, ${c.paymentMethodId},
              'charge', ${minorToNumeric(charge.amountMinor)}, ${c.terms.currency},
              ${r?.outcome === 'succeeded' ? 'succeeded' : 'declined'},
              ${r?.outcome === 'declined' ? r.code : null}, ${charge.idempotencyKey}, ${r?.reference ?? null}
            FROM fresh)`
        : sql.fragment``;
      const messagePart = c.message
        ? sql.fragment`,
          message AS (
            INSERT INTO outbox_messages (message_key, user_id, topic, payload)
            SELECT ${`${c.subscriptionId}:${c.version}`}, ${c.userId}, ${c.message.topic},
              ${sql.jsonb({ subscriptionId: c.subscriptionId, ...c.message.data })}
            FROM known WHERE known.ok
            ON CONFLICT (message_key) DO NOTHING)`
        : sql.fragment``;
      const known = await pool.oneFirst(sql.type(Known)`
        WITH applied AS (
          INSERT INTO subscriptions (
            subscription_id, user_id, plan, status, country, currency, price, price_minor,
            current_period_start, current_period_end, grace_until, cancel_at_period_end,
            payment_method_id, period_index, pending_plan, state_version, updated_at)
          SELECT ${c.subscriptionId}, u.user_id, ${c.terms.plan}, ${c.status}, u.country,
            ${c.terms.currency}, ${minorToNumeric(c.terms.priceMinor)}, ${c.terms.priceMinor},
            ${ts(c.periodStart)}, ${ts(c.periodEnd)}, ${ts(c.graceUntil)}, ${c.cancelAtPeriodEnd},
            ${c.paymentMethodId}, ${c.periodIndex}, ${c.pendingPlan}, ${c.version}, now()
          FROM users u WHERE u.user_id = ${c.userId}
          ON CONFLICT (subscription_id) DO UPDATE SET
            plan = EXCLUDED.plan, status = EXCLUDED.status, currency = EXCLUDED.currency,
            price = EXCLUDED.price, price_minor = EXCLUDED.price_minor,
            current_period_start = EXCLUDED.current_period_start,
            current_period_end = EXCLUDED.current_period_end, grace_until = EXCLUDED.grace_until,
            cancel_at_period_end = EXCLUDED.cancel_at_period_end,
            payment_method_id = EXCLUDED.payment_method_id, period_index = EXCLUDED.period_index,
            pending_plan = EXCLUDED.pending_plan, state_version = EXCLUDED.state_version,
            updated_at = now()
          WHERE subscriptions.state_version < EXCLUDED.state_version
          RETURNING subscription_id),
        -- Applied now, or written already by a newer change (this one is an older retry).
        known AS (
          SELECT EXISTS (SELECT 1 FROM applied) AS applied,
            EXISTS (SELECT 1 FROM applied)
              OR EXISTS (SELECT 1 FROM subscriptions WHERE subscription_id = ${c.subscriptionId}) AS ok),
        history AS (
          INSERT INTO subscription_history (subscription_id, from_status, to_status, plan, reason, version)
          SELECT ${c.subscriptionId}, ${c.fromStatus}, ${c.status}, ${c.terms.plan}, ${c.reason}, ${c.version}
          FROM known WHERE known.ok
          ON CONFLICT (subscription_id, version) WHERE version IS NOT NULL DO NOTHING),
        -- Premium is an entitlement of any live subscription; the last one ending makes the user free.
        -- (The statement's snapshot predates the row written above, hence this one's status apart.)
        tier AS (
          UPDATE users SET tier = CASE
            WHEN ${c.status} IN ('trialing', 'active', 'past_due') OR EXISTS (
              SELECT 1 FROM subscriptions WHERE user_id = ${c.userId}
                AND subscription_id <> ${c.subscriptionId} AND status IN ('trialing', 'active', 'past_due'))
            THEN 'premium' ELSE 'free' END
          WHERE user_id = ${c.userId} AND (SELECT applied FROM known))${paymentParts}${messagePart}
        SELECT ok FROM known`);
      if (!known) {
        throw ApplicationFailure.nonRetryable(
          `User ${c.userId} does not exist; the subscription cannot be recorded`,
          'UnknownUser',
        );
      }
    },

    /**
     * Charges, and when the charge succeeds writes the change it pays for: a paid renewal is then one
     * local activity, not two. Run again (a retry, a worker that died between the two steps), the charge
     * repeats with the same idempotency key, so the provider answers with the first result, and the write
     * is version-guarded: nothing happens twice.
     */
    async chargeAndRecordIfPaid({ charge, ifPaid }: ChargeAndRecordInput): Promise<ChargeResult> {
      const result = await activities.chargeSubscription(charge);
      if (result.outcome === 'succeeded') {
        await activities.recordSubscriptionChange({
          ...ifPaid,
          charge: { idempotencyKey: charge.idempotencyKey, amountMinor: charge.amountMinor, result },
        });
      }
      return result;
    },
  };
  return activities;
}

export type BillingActivities = ReturnType<typeof createBillingActivities>;
