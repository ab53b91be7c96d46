import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Every custom search attribute Cadenza's runs carry, in one list: slice contracts take their keys from
 * here, the native stack registers them at server start and the compose file's setup must name the same
 * (test/unit/compose.test.ts). IDs only, never personal data (DESIGN §2).
 */
export const SearchAttribute = {
  /** The listener a run is about (subscriptions, GDPR requests). */
  userId: defineSearchAttributeKey('CadenzaUserId', 'KEYWORD'),
  subscriptionId: defineSearchAttributeKey('CadenzaSubscriptionId', 'KEYWORD'),
  /** A settlement month, `YYYY-MM`. */
  month: defineSearchAttributeKey('CadenzaMonth', 'KEYWORD'),
  trackId: defineSearchAttributeKey('CadenzaTrackId', 'KEYWORD'),
  artistId: defineSearchAttributeKey('CadenzaArtistId', 'KEYWORD'),
  uploadId: defineSearchAttributeKey('CadenzaUploadId', 'KEYWORD'),
  /** A GDPR request's ID. */
  requestId: defineSearchAttributeKey('CadenzaRequestId', 'KEYWORD'),
  /** The business state of a run where operators filter by it (e.g. `awaiting_approval`, `escalated`). */
  status: defineSearchAttributeKey('CadenzaStatus', 'KEYWORD'),
  /** A run that needs a person: a GDPR request near its deadline, a settlement waiting too long. */
  escalated: defineSearchAttributeKey('CadenzaEscalated', 'BOOL'),
} as const;

const CLI_TYPES = {
  KEYWORD: 'Keyword',
  BOOL: 'Bool',
  INT: 'Int',
  DATETIME: 'Datetime',
  TEXT: 'Text',
} as const;

/** name → the type as `temporal operator search-attribute create` and `start-dev --search-attribute` spell it. */
export const SEARCH_ATTRIBUTE_TYPES: Record<string, string> = Object.fromEntries(
  Object.values(SearchAttribute).map((k) => [k.name, CLI_TYPES[k.type as keyof typeof CLI_TYPES]]),
);
