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
  UploadExpired: { status: 410, slug: 'upload-expired', title: 'Upload expired' },
  EmptyFile: { status: 422, slug: 'empty-file', title: 'The file is empty' },
  FileTooLarge: { status: 413, slug: 'file-too-large', title: 'The file is too large' },
  UnsupportedFormat: { status: 415, slug: 'unsupported-format', title: 'Unsupported audio format' },
  ExtensionMismatch: { status: 422, slug: 'extension-mismatch', title: 'File name and content disagree' },
  CorruptFile: { status: 422, slug: 'corrupt-file', title: 'The file is damaged' },
  TruncatedFile: { status: 422, slug: 'truncated-file', title: 'The file is cut short' },
  TooShort: { status: 422, slug: 'track-too-short', title: 'The track is too short' },
  TooLong: { status: 422, slug: 'track-too-long', title: 'The track is too long' },
  SampleRateTooLow: { status: 422, slug: 'sample-rate-too-low', title: 'Sample rate too low' },
  InvalidIsrc: { status: 400, slug: 'invalid-isrc', title: 'Invalid ISRC' },
  InvalidUpc: { status: 400, slug: 'invalid-upc', title: 'Invalid UPC' },
  DuplicateOfOtherArtist: {
    status: 409,
    slug: 'duplicate-of-other-artist',
    title: "Another artist's recording",
  },
  IsrcInUse: { status: 409, slug: 'isrc-in-use', title: 'ISRC already in use' },
  AlbumOfAnotherArtist: { status: 409, slug: 'album-of-another-artist', title: "Another artist's album" },
  UnknownGenre: { status: 400, slug: 'unknown-genre', title: 'Unknown genre' },
  CoverUnreadable: { status: 422, slug: 'cover-unreadable', title: 'Cover art unreadable' },
  CoverNotSquare: { status: 422, slug: 'cover-not-square', title: 'Cover art is not square' },
  CoverTooSmall: { status: 422, slug: 'cover-too-small', title: 'Cover art is too small' },
  TrackNotFound: { status: 404, slug: 'not-found', title: 'Not found' },
  ProcessingFailed: { status: 500, slug: 'processing-failed', title: 'Processing failed' },
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
