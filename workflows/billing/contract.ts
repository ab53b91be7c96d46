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
export const SEARCH = { userId: SearchAttribute.userId, subscriptionId: SearchAttribute.subscriptionId };

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
}

export type SubscriptionInput = { start: NewSubscription } | { state: SubscriptionState };

export interface SubscriptionView {
  subscriptionId: string;
  userId: string;
  status: SubscriptionStatus | 'pending';
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

export const subscriptionState = defineQuery<SubscriptionView>('state');
export const cancelSubscription = defineUpdate<SubscriptionView, [{ atPeriodEnd: boolean }]>('cancel');
export const changePlan = defineUpdate<PlanChangeResult, [{ plan: string }]>('changePlan');
export const paymentMethodUpdated = defineUpdate<SubscriptionView, [{ paymentMethodId: string }]>(
  'paymentMethodUpdated',
);
