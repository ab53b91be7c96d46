import { defineQuery, defineUpdate } from '@temporalio/workflow';
import { SearchAttribute } from '../search-attributes';

/**
 * The compliance slice's contract: GDPR erasure (Art. 17) and export (Art. 15/20). The API, tests,
 * benchmarks, the history recorder and the stack take the IDs, queue, attributes and handles from here.
 * Inputs, results, queries and updates carry IDs, codes and counts, never a name or an e-mail.
 */

export const TASK_QUEUE = 'compliance';
export const ERASURE_WORKFLOW = 'gdprErasure';
export const EXPORT_WORKFLOW = 'gdprExport';
export const gdprErasureWorkflowId = (requestId: string) => `gdpr-erasure-${requestId}`;
export const gdprExportWorkflowId = (requestId: string) => `gdpr-export-${requestId}`;
export const SEARCH = {
  requestId: SearchAttribute.requestId,
  userId: SearchAttribute.userId,
  status: SearchAttribute.status,
  escalated: SearchAttribute.escalated,
};

/** The version of the erasure procedure, written into every certificate. */
export const ERASURE_CODE_VERSION = 1;

export { DEADLINE_MONTHS, ESCALATE_AFTER_DAYS, MAX_EXTENSION_MONTHS } from '../../domain/compliance/deadline';

/** An export's link lives 7 days; the `exports` bucket removes the object a day later (sql/migrate/minio.ts). */
export const EXPORT_LINK_DAYS = 7;

/** Art. 17(1) grounds (and a data subject's own request): codes, so no free text reaches a history. */
export const ERASURE_REASONS = [
  'data_subject_request',
  'consent_withdrawn',
  'no_longer_necessary',
  'objection',
  'unlawful_processing',
  'legal_obligation',
  'child_information_society',
] as const;
export type ErasureReason = (typeof ERASURE_REASONS)[number];

/** Art. 12(3): why the deadline is extended. */
export const EXTENSION_REASONS = ['complexity', 'number_of_requests'] as const;
export type ExtensionReason = (typeof EXTENSION_REASONS)[number];

/** Every store an erasure works through, in the order of the contract. */
export const ERASURE_STORES = [
  'auth',
  'subscriptions',
  'payments',
  'postgres',
  'clickhouse',
  'opensearch',
  'minio',
  'kafka',
] as const;
export type ErasureStore = (typeof ERASURE_STORES)[number];
/** The stores holding data that is deleted and then verified by an independent query. */
export const VERIFIED_STORES = ['postgres', 'clickhouse', 'opensearch', 'minio'] as const;
export type VerifiedStore = (typeof VERIFIED_STORES)[number];

/** How each store's step is checked, stated in the certificate. */
export const VERIFICATION: Record<ErasureStore, string> = {
  auth: 'denied_subjects and play_suppressions hold the user, and no running API or sink reports an older list',
  subscriptions:
    'running subscription runs found by CadenzaUserId (and live subscriptions in PostgreSQL) canceled now and closed',
  payments: 'every payment method of the user detached at the payment provider',
  postgres:
    'every uuid column that references users or names a person counted for the user; only finance rows, the request and the suppression keep the ID, pseudonymised',
  clickhouse:
    'every UUID column naming a user and every String column of every MergeTree table counted for the user ID, after system.mutations reported every delete done',
  opensearch: 'the user ID searched as a phrase in every field of every Cadenza index',
  minio: 'users/<id> listed in every bucket that is not write-once, and every key of exports read',
  kafka: 'not erasable record by record: retention read from the brokers; the sinks drop the user meanwhile',
};

/** The API's statuses; `joined` requests answer with the status of the request they joined. */
export const REQUEST_STATUSES = [
  'received',
  'in_progress',
  'verifying',
  'completed',
  'escalated',
  'failed',
] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];
export type RequestOutcome = 'erased' | 'exported' | 'nothing_left' | 'unknown_user' | 'canceled';

export const GdprFailure = {
  /** An extension asked for a request that is closed, or already extended. */
  ExtensionRefused: 'ExtensionRefused',
  /** A user ID that is not a UUID reached a step (the API checks it first). */
  BadUserId: 'BadUserId',
} as const;
export type GdprFailure = (typeof GdprFailure)[keyof typeof GdprFailure];

export interface ErasureInput {
  requestId: string;
  userId: string;
  /** The token subject that asked (a compliance officer's or the listener's own ID). */
  requester: string;
  reason: ErasureReason;
}

export interface ExportInput {
  requestId: string;
  userId: string;
  requester: string;
}

/** Counts by what was removed (table, index, bucket …): numbers only. */
export type Counts = Record<string, number>;

export interface StoreOutcome {
  store: ErasureStore;
  /** What was found and removed before the first deletion (a retried step keeps the first counts). */
  found: Counts;
  /** Attempts of the erase-then-verify round until verification found nothing. */
  rounds: number;
  verifiedAt: string | null;
  /** Verification's own method, stated in the proof. */
  method: string;
  note?: string;
}

export interface ErasureResult {
  requestId: string;
  outcome: 'erased' | 'joined' | 'unknown_user' | 'canceled';
  /** The open request this one joined (its run does the work), if any. */
  joined?: string;
  certificateKey?: string;
  certificateSha256?: string;
  escalated: boolean;
}

export interface ExportResult {
  requestId: string;
  outcome: 'exported' | 'nothing_left' | 'joined' | 'unknown_user' | 'canceled';
  joined?: string;
  exportKey?: string;
  bytes?: number;
  sha256?: string;
}

/** A run's live detail (the API reads PostgreSQL; this is for operators and tests). */
export interface RequestProgress {
  requestId: string;
  status: RequestStatus;
  stores: Partial<Record<ErasureStore, 'pending' | 'working' | 'verified' | 'residue' | 'done'>>;
  dueAt: string | null;
  escalated: boolean;
}

export const requestProgress = defineQuery<RequestProgress>('progress');
/** Art. 12(3): extends the deadline (once) by up to two months, with a reason; answers the new due date. */
export const extendDeadline = defineUpdate<
  { dueAt: string },
  [{ months: number; reason: ExtensionReason; by: string }]
>('extendDeadline');
