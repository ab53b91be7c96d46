/**
 * Plan terms and billing-period arithmetic. Pure and dependency-free: workflow code imports it
 * (DESIGN §2), so it must stay deterministic — no clock, no I/O, no Node built-ins.
 */

/** A length of time: calendar months (billing anchors keep their day) or exact milliseconds. */
export type Span = { months: number } | { ms: number };

/** What a plan costs and how it bills. Money is integer minor units of `currency` (cents). */
export interface PlanTerms {
  plan: string;
  priceMinor: number;
  currency: string;
  period: Span;
  /** Default free trial for new subscriptions; the API may ask for another length. */
  trialMs: number;
  /** How long a subscription stays past_due (premium kept) before it expires. */
  graceMs: number;
  /** Charge retries, as offsets from the failed renewal, each within the grace. */
  dunningMs: number[];
}

export type SubscriptionStatus = 'trialing' | 'active' | 'past_due' | 'expired' | 'canceled';

const DAY = 86_400_000;
export const days = (n: number) => n * DAY;

/** `anchor` moved by n spans. Months are added on the calendar from the anchor itself, so
 * Jan 31 → Feb 28 → Mar 31 (not Mar 28): no drift across a year of renewals. */
export function addSpan(anchor: number, span: Span, n: number): number {
  if ('ms' in span) return anchor + span.ms * n;
  const d = new Date(anchor);
  const months = d.getUTCMonth() + span.months * n;
  const year = d.getUTCFullYear() + Math.floor(months / 12);
  const month = ((months % 12) + 12) % 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  return Date.UTC(
    year,
    month,
    Math.min(d.getUTCDate(), lastDay),
    d.getUTCHours(),
    d.getUTCMinutes(),
    d.getUTCSeconds(),
    d.getUTCMilliseconds(),
  );
}

export const sameSpan = (a: Span, b: Span) =>
  'ms' in a ? 'ms' in b && a.ms === b.ms : 'months' in b && a.months === b.months;

/**
 * The price difference for the rest of a period, when a plan is upgraded mid-period:
 * (new − old) × remaining / period, in minor units, rounded half up. Exact: BigInt arithmetic.
 */
export function prorate(oldMinor: number, newMinor: number, remainingMs: number, periodMs: number): number {
  if (newMinor <= oldMinor || remainingMs <= 0 || periodMs <= 0) return 0;
  const numerator = BigInt(newMinor - oldMinor) * BigInt(Math.min(remainingMs, periodMs));
  const denominator = BigInt(periodMs);
  return Number((numerator * 2n + denominator) / (denominator * 2n));
}

/** The provider's idempotency key for one charge attempt: derived from (subscription, period, attempt),
 * so an activity retried after a timeout reuses it and the provider charges once. */
export const chargeKey = (subscriptionId: string, period: number, attempt: number | string) =>
  `sub:${subscriptionId}:p${period}:${typeof attempt === 'number' ? `a${attempt}` : attempt}`;
