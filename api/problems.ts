import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { CadenzaError } from '../lib/errors';
import type { FailureType } from '../workflows/failures';

/**
 * The one table from workflow and activity failure types to problem types (RFC 9457). TypeScript refuses
 * a failure type without an entry, and test/unit/problems.test.ts enumerates them at run time.
 */
interface ProblemOf {
  status: number;
  slug: string;
  title: string;
}

export const FAILURE_PROBLEMS: { readonly [K in FailureType]: ProblemOf } = {
  SubscriptionEnded: { status: 409, slug: 'subscription-ended', title: 'Subscription has ended' },
  SubscriptionStarting: { status: 409, slug: 'subscription-starting', title: 'Subscription is starting' },
  PastDue: { status: 409, slug: 'subscription-past-due', title: 'Payment overdue' },
  UnknownPlan: { status: 400, slug: 'unknown-plan', title: 'Unknown plan' },
  IncompatiblePlan: { status: 409, slug: 'incompatible-plan', title: 'Plan cannot be switched to' },
  SamePlan: { status: 409, slug: 'same-plan', title: 'Already on this plan' },
  PaymentDeclined: { status: 402, slug: 'payment-declined', title: 'Payment declined' },
  ProviderRequestError: { status: 502, slug: 'payment-provider-refused', title: 'Payment provider refused' },
  UnknownUser: { status: 404, slug: 'not-found', title: 'Not found' },
  MonthNotClosed: { status: 409, slug: 'month-not-closed', title: 'Month has not ended' },
  SameApprover: { status: 403, slug: 'separation-of-duties', title: 'Approver started the run' },
  NotAwaitingApproval: {
    status: 409,
    slug: 'not-awaiting-approval',
    title: 'Run is not waiting for a decision',
  },
  RunHeld: { status: 409, slug: 'settlement-held', title: 'Run is held by exceptions' },
  RunInProgress: { status: 409, slug: 'settlement-in-progress', title: 'A run of the month is computing' },
  UnknownRateVersion: { status: 400, slug: 'unknown-rate-version', title: 'Unknown rate version' },
  UnknownPolicyVersion: { status: 400, slug: 'unknown-policy-version', title: 'Unknown policy version' },
  InvalidCutoff: { status: 400, slug: 'invalid-cutoff', title: 'Invalid cut-off' },
};

const isFailureType = (type: string | undefined | null): type is FailureType =>
  typeof type === 'string' && Object.hasOwn(FAILURE_PROBLEMS, type);

/** The ApplicationFailure behind a failed update or workflow, if any. */
function applicationFailure(err: unknown): ApplicationFailure | undefined {
  let cause: unknown = err;
  for (let depth = 0; depth < 5 && cause; depth++) {
    if (cause instanceof ApplicationFailure) return cause;
    cause = (cause as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * A refused update or failed workflow as the problem the caller can act on; anything else unchanged
 * (it becomes a 500 without internal detail, or a problem of its own).
 */
export function problemFromFailure(err: unknown): unknown {
  if (!(err instanceof WorkflowUpdateFailedError || err instanceof WorkflowFailedError)) return err;
  const failure = applicationFailure(err);
  if (!failure || !isFailureType(failure.type)) {
    return err instanceof WorkflowUpdateFailedError
      ? new CadenzaError('conflict', 409, 'Conflict', failure?.message ?? 'The workflow refused the request.')
      : err;
  }
  const p = FAILURE_PROBLEMS[failure.type];
  return new CadenzaError(p.slug, p.status, p.title, failure.message, { failure: failure.type });
}
