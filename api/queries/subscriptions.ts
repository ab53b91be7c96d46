import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { toMinor } from '../../domain/billing/money';
import type { SubscriptionStatus } from '../../domain/billing/terms';
import type { SubscriptionView } from '../../workflows/billing/contract';

/**
 * Subscriptions as the API shows them, from the PostgreSQL projection the workflow keeps current: reads
 * never wait for a workflow, and still answer with the worker stopped or the run past retention.
 */

const Row = z.object({
  subscription_id: z.string(),
  user_id: z.string(),
  status: z.enum(['pending', 'trialing', 'active', 'past_due', 'expired', 'canceled']),
  plan: z.string(),
  price: z.string(),
  price_minor: z.number().nullable(),
  currency: z.string(),
  pending_plan: z.string().nullable(),
  period_index: z.number(),
  current_period_start: z.string(),
  current_period_end: z.string(),
  cancel_at_period_end: z.boolean(),
  next_charge_at: z.string().nullable(),
  next_charge_minor: z.number().nullable(),
  grace_until: z.string().nullable(),
  last_decline_code: z.string().nullable(),
  payment_method_id: z.string().nullable(),
  entitled: z.boolean(),
  payment_in_flight: z.boolean(),
  ended_reason: z.string().nullable(),
  state_version: z.number(),
});
type Row = z.infer<typeof Row>;

const columns = sql.fragment`subscription_id, user_id, status, plan, price::text AS price, price_minor, currency,
  pending_plan, period_index, to_json(current_period_start)#>>'{}' AS current_period_start,
  to_json(current_period_end)#>>'{}' AS current_period_end, cancel_at_period_end,
  to_json(next_charge_at)#>>'{}' AS next_charge_at, next_charge_minor,
  to_json(grace_until)#>>'{}' AS grace_until, last_decline_code, payment_method_id, entitled,
  payment_in_flight, ended_reason, state_version`;

const isoOf = (t: string | null) => (t === null ? null : new Date(t).toISOString());

/** A row as the subscription view (the same shape the workflow's query answers). */
export function viewOf(row: Row): SubscriptionView & { adopted: boolean } {
  return {
    subscriptionId: row.subscription_id,
    userId: row.user_id,
    status: row.status as SubscriptionStatus,
    plan: row.plan,
    priceMinor: row.price_minor ?? toMinor(row.price, row.currency.trim()),
    currency: row.currency.trim(),
    pendingPlan: row.pending_plan,
    periodIndex: row.period_index,
    periodStart: isoOf(row.current_period_start),
    periodEnd: isoOf(row.current_period_end),
    cancelAtPeriodEnd: row.cancel_at_period_end,
    nextChargeAt: isoOf(row.next_charge_at),
    nextChargeMinor: row.next_charge_minor,
    graceUntil: isoOf(row.grace_until),
    lastDeclineCode: row.last_decline_code,
    paymentMethodId: row.payment_method_id ?? '',
    entitled: row.entitled,
    paymentInFlight: row.payment_in_flight,
    endedReason: row.ended_reason,
    // Written by its workflow at least once (a row from before workflows, not yet adopted, is not).
    adopted: row.state_version > 0,
  };
}

export async function subscriptionById(pool: DatabasePool, subscriptionId: string) {
  const row = await pool.maybeOne(sql.type(Row)`
    SELECT ${columns} FROM subscriptions WHERE subscription_id = ${subscriptionId}`);
  return row ? viewOf(row) : null;
}

/** A user's subscriptions, newest first. */
export async function subscriptionsOfUser(pool: DatabasePool, userId: string, limit = 100) {
  const rows = await pool.any(sql.type(Row)`
    SELECT ${columns} FROM subscriptions WHERE user_id = ${userId}
    ORDER BY created_at DESC, subscription_id LIMIT ${limit}`);
  return rows.map(viewOf);
}

/** The user's live subscription on an exclusive plan, if any (there is one at most). */
export async function liveExclusiveSubscription(pool: DatabasePool, userId: string) {
  return pool.maybeOneFirst(sql.type(z.object({ subscription_id: z.string() }))`
    SELECT subscription_id FROM subscriptions
    WHERE user_id = ${userId} AND exclusive AND status IN ('pending', 'trialing', 'active', 'past_due')
    ORDER BY created_at LIMIT 1`);
}

/** The subscription that used the user's trial of a plan family, if any. */
export async function trialTaken(pool: DatabasePool, userId: string, family: string) {
  return pool.maybeOneFirst(sql.type(z.object({ subscription_id: z.string() }))`
    SELECT subscription_id FROM subscription_trials WHERE user_id = ${userId} AND plan_family = ${family}`);
}
