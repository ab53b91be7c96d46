import type { ScheduleDeclaration } from '../schedules';
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { PlanTerms, SubscriptionStatus } from '../../domain/billing/terms';
import { SearchAttribute } from '../search-attributes';

/**
 * The billing slice's contract: what the API, tests, benchmarks, the history recorder and the stack
 * know of the subscription workflow. Nothing else spells its ID, queue, attributes or handles.
 */

export const TASK_QUEUE = 'billing';
export const SUBSCRIPTION_WORKFLOW = 'subscription';
export const subscriptionWorkflowId = (subscriptionId: string) => `subscription-${subscriptionId}`;
/** The subscription a workflow ID belongs to, or null for any other workflow. */
export const subscriptionIdOf = (workflowId: string): string | null =>
  /^subscription-([0-9a-f-]{36})$/.exec(workflowId)?.[1] ?? null;
export const SEARCH = { userId: SearchAttribute.userId, subscriptionId: SearchAttribute.subscriptionId };

/** Billing reconciliation: the provider's records against PostgreSQL, and rows against their workflows. */
export const RECONCILIATION_WORKFLOW = 'billingReconciliation';
/** A scheduled run is named by its day (Temporal appends the scheduled time); on demand by a request ID. */
export const reconciliationWorkflowId = (key: string) => `billing-reconciliation-${key}`;

/** Why a subscription refuses a request or a step fails for good: every one maps to a problem type. */
export const BillingFailure = {
  /** An update to a subscription that has ended (canceled or expired). */
  SubscriptionEnded: 'SubscriptionEnded',
  /** An update before the first state was written. */
  SubscriptionStarting: 'SubscriptionStarting',
  /** A plan change while a payment is overdue. */
  PastDue: 'PastDue',
  UnknownPlan: 'UnknownPlan',
  /** A plan change to a plan of another currency or billing period. */
  IncompatiblePlan: 'IncompatiblePlan',
  /** A plan change to the plan it is already on, with nothing scheduled to withdraw. */
  SamePlan: 'SamePlan',
  /** An upgrade whose prorated charge was declined. */
  PaymentDeclined: 'PaymentDeclined',
  /** The provider refused the request itself (not a decline): a bug or a changed account. */
  ProviderRequestError: 'ProviderRequestError',
  UnknownUser: 'UnknownUser',
  /** A plan change while a payment of the subscription is being made: nothing changed; try again shortly. */
  PaymentInFlight: 'PaymentInFlight',
} as const;
export type BillingFailure = (typeof BillingFailure)[keyof typeof BillingFailure];

export interface NewSubscription {
  subscriptionId: string;
  userId: string;
  plan: string;
  paymentMethodId: string;
  /** Overrides the plan's trial; 0 charges at once. */
  trialDays?: number;
  /** An imported subscriber, already paid (elsewhere) until this instant: active, first charge then. */
  paidThrough?: string;
  /** The plan's terms as quoted when the subscription was made; without them the run quotes the plan. */
  terms?: PlanTerms;
  /**
   * A subscription whose row exists without a running workflow (seeded, or its run closed), adopted as it
   * stands: its status, period and written version continue (no policy check, no new trial).
   */
  adopt?: {
    status: 'pending' | 'trialing' | 'active' | 'past_due';
    periodIndex: number;
    periodStart: number;
    periodEnd: number;
    version: number;
    reason: string;
  };
}

/** What a run hands the next one at continue-as-new. */
export interface SubscriptionState {
  subscriptionId: string;
  userId: string;
  paymentMethodId: string;
  terms: PlanTerms;
  /** A downgrade waiting for the next period. */
  pendingPlan: PlanTerms | null;
  status: SubscriptionStatus;
  /** Start of paid period 1; period n is [anchor + (n-1) periods, anchor + n periods). Period 0 is the trial. */
  anchor: number;
  periodIndex: number;
  periodStart: number;
  periodEnd: number;
  cancelAtPeriodEnd: boolean;
  version: number;
  /** The CODE_VERSION of the code that continued this run (absent: older code). */
  codeVersion?: number;
  /**
   * A period has been paid (or imported as paid): a declined renewal then keeps premium through grace;
   * an unpaid trial end does not. Absent in states of older code (they continue only after a payment).
   */
  paidBefore?: boolean;
  /** A catalog price announced for the next renewal of this plan (the notice went out with it). */
  pendingPrice?: { plan: string; priceMinor: number } | null;
}

export type SubscriptionInput = { start: NewSubscription } | { state: SubscriptionState };

export interface SubscriptionView {
  subscriptionId: string;
  userId: string;
  status: SubscriptionStatus;
  plan: string | null;
  priceMinor: number | null;
  currency: string | null;
  pendingPlan: string | null;
  periodIndex: number;
  periodStart: string | null;
  periodEnd: string | null;
  cancelAtPeriodEnd: boolean;
  nextChargeAt: string | null;
  nextChargeMinor: number | null;
  graceUntil: string | null;
  lastDeclineCode: string | null;
  paymentMethodId: string;
  /** Grants premium now (absent from older code's answers). */
  entitled?: boolean;
  /** A charge is being made right now; an update answered meanwhile says what it did to it. */
  paymentInFlight?: boolean;
  endedReason?: string | null;
}

export interface PlanChangeResult {
  plan: string;
  effective: 'now' | 'next_period';
  effectiveAt: string;
  prorationMinor: number;
  subscription: SubscriptionView;
}

export interface SubscriptionEnd {
  subscriptionId: string;
  status: 'expired' | 'canceled';
  reason: string;
}

export interface CancelRequest {
  atPeriodEnd: boolean;
  /** Who asked: an operator's cancel says so in the history (absent: the customer). */
  by?: 'customer' | 'operator';
}

export const subscriptionState = defineQuery<SubscriptionView>('state');
export const cancelSubscription = defineUpdate<SubscriptionView, [CancelRequest]>('cancel');
export const changePlan = defineUpdate<PlanChangeResult, [{ plan: string }]>('changePlan');
export const paymentMethodUpdated = defineUpdate<SubscriptionView, [{ paymentMethodId: string }]>(
  'paymentMethodUpdated',
);

export interface ReconciliationInput {
  /** Provider records created this long before the run's start are compared (default 3 days). */
  lookbackMs?: number;
  /** Only this subscription's row against its workflow (the API found its run closed). */
  subscriptionId?: string;
}

export interface ReconciliationResult {
  chargesCompared: number;
  refundsCompared: number;
  subscriptionsCompared: number;
  /** New mismatches found, as `<kind>:<resolution>` → count (none: every record agreed). */
  mismatches: Record<string, number>;
}

/** The slice's Temporal Schedules (collected in workflows/schedules.ts): reconciliation every day at 03:30 UTC. */
export const SCHEDULES: readonly ScheduleDeclaration[] = [
  {
    scheduleId: 'billing-reconciliation-daily',
    description:
      'Billing: provider charges and refunds against payment_transactions; subscription rows against their workflows',
    spec: { cron: '30 3 * * *' },
    workflowType: RECONCILIATION_WORKFLOW,
    workflowId: reconciliationWorkflowId('daily'),
    taskQueue: TASK_QUEUE,
    args: (cfg): [{ lookbackMs: number }] => [{ lookbackMs: cfg.billing.reconcileLookbackMs }],
  },
];
