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
  ExtensionRefused: { status: 409, slug: 'gdpr-extension-refused', title: 'Deadline cannot be extended' },
  BadUserId: { status: 400, slug: 'validation', title: 'Invalid request' },
  RestoreDrillFailed: { status: 500, slug: 'restore-drill-failed', title: 'Restore drill failed' },
  BackupNotFound: { status: 404, slug: 'backup-not-found', title: 'No such backup' },
  PaymentInFlight: { status: 409, slug: 'payment-in-flight', title: 'A payment is being made' },
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

/** Socket-level failures: the store is down, unreachable, or dropped the connection. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ERR_SOCKET_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);
/** PostgreSQL SQLSTATEs of a server that is going away or full: class 08, admin shutdown, too many clients. */
const PG_UNAVAILABLE = /^(08...|57P0[123]|53300)$/;
/** Client classes that mean "no connection" (slonik, OpenSearch, KafkaJS). */
const UNAVAILABLE_NAMES = new Set([
  'ConnectionError', // slonik, OpenSearch
  'BackendTerminatedError', // slonik
  'BackendTerminatedUnexpectedlyError',
  'NoLivingConnectionsError', // OpenSearch
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
]);
/** gRPC statuses (Temporal) of a server that cannot answer now: UNAVAILABLE, DEADLINE_EXCEEDED. */
const GRPC_UNAVAILABLE = new Set([14, 4]);

/**
 * Whether an error means a store (PostgreSQL, ClickHouse, OpenSearch, MinIO, Temporal, Kafka) is not
 * answering, so the request can be retried later (503 + Retry-After) rather than being our bug (500).
 * Walks the cause chain, since every client wraps the socket's error in its own.
 */
export function isStoreOutage(err: unknown): boolean {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length && seen.size < 12) {
    const e = queue.shift();
    if (!e || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const { code, name, message } = e as { code?: unknown; name?: unknown; message?: unknown };
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || PG_UNAVAILABLE.test(code))) return true;
    // slonik's errors keep the name "Error": their class says what happened.
    const className = (e as { constructor?: { name?: string } }).constructor?.name;
    if ((typeof name === 'string' && UNAVAILABLE_NAMES.has(name)) || UNAVAILABLE_NAMES.has(className ?? ''))
      return true;
    // Temporal's ServiceError carries the gRPC status of the call that failed.
    if (typeof code === 'number' && GRPC_UNAVAILABLE.has(code) && 'details' in e) return true;
    if (name === 'TimeoutError' || (typeof message === 'string' && /^Timeout error\.?$/.test(message)))
      return true; // OpenSearch, ClickHouse: the store did not answer in time
    const { cause, errors, originalError } = e as {
      cause?: unknown;
      errors?: unknown;
      originalError?: unknown;
    };
    queue.push(cause, originalError, ...(Array.isArray(errors) ? errors : []));
  }
  return false;
}
