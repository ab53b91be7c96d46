/**
 * The payment-provider adapter. Billing activities speak only this interface; the sandbox provider
 * (sandbox/payments, started by the stack) and any real provider plug in behind it. Every money-moving
 * call carries an idempotency key: the provider charges a key at most once and answers a repeat with
 * the first result, so an activity retried after a timeout never charges twice.
 * Amounts are integer minor units (cents); never floats.
 */

/** The sandbox's documented test payment methods, like a real provider's test cards. */
export const TEST_METHODS = [
  'test_ok',
  'test_insufficient_funds',
  'test_expired_card',
  'test_do_not_honor',
  'test_timeout',
  'test_server_error',
] as const;
export type TestMethod = (typeof TEST_METHODS)[number];

/** A tokenised payment method: the token and display details, never a card number. */
export interface TokenizedMethod {
  token: string;
  brand: string;
  last4: string;
  expMonth: number;
  expYear: number;
}

export interface ChargeRequest {
  idempotencyKey: string;
  token: string;
  amountMinor: number;
  currency: string;
  /** IDs only (subscription, period): the provider's records are matched back by them. */
  metadata: Record<string, string>;
  /** Abandons the wait for the answer (the activity was cancelled or timed out); a retry finds it by key. */
  signal?: AbortSignal;
}

/**
 * A provider's answer to a charge or authorization. A decline is an answer, not an error:
 * `soft` declines (insufficient funds) may succeed later; `hard` ones (expired card, do not honor)
 * will not until the payment method changes.
 */
export type ChargeResult =
  | { outcome: 'succeeded'; reference: string }
  | { outcome: 'declined'; reference: string; code: string; retry: 'soft' | 'hard' };

export interface RefundRequest {
  idempotencyKey: string;
  chargeReference: string;
  amountMinor: number;
}

export interface RefundResult {
  reference: string;
  amountMinor: number;
}

/** A charge as the provider's records hold it (for lookups and reconciliation). */
export interface ChargeRecord {
  reference: string;
  outcome: 'succeeded' | 'declined';
  amountMinor: number;
  refundedMinor: number;
  currency: string;
  declineCode: string | null;
  declineRetry: 'soft' | 'hard' | null;
  metadata: Record<string, string>;
  createdAt: number;
}

export interface RefundRecord {
  reference: string;
  chargeReference: string;
  amountMinor: number;
  currency: string;
  idempotencyKey: string;
  /** The refunded charge's metadata. */
  chargeMetadata: Record<string, string>;
  createdAt: number;
}

/** A page of records, oldest first; pass `after` (the last reference) for the next page. */
export interface RecordPage {
  since: number;
  after?: string;
  limit: number;
}

/**
 * The metadata key under which every charge carries its own idempotency key: providers forget keys
 * (after ~24 h at common ones), their records' metadata stays searchable.
 */
export const CHARGE_KEY_METADATA = 'cadenza_key';

/** Timeouts, 5xx, connection failures, a key still in flight: retry with the same key. */
export class TransientProviderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransientProviderError';
  }
}

/** The provider refused the request itself (unknown token, key reused with other parameters): do not retry. */
export class ProviderRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ProviderRequestError';
  }
}

export interface PaymentProvider {
  readonly name: string;
  /** Sandbox only: turns a documented test method name into a token. */
  tokenizeTestMethod(method: TestMethod): Promise<TokenizedMethod>;
  /** Checks that a method can be charged without moving money (a zero-amount authorization). */
  authorize(req: Omit<ChargeRequest, 'amountMinor'>): Promise<ChargeResult>;
  charge(req: ChargeRequest): Promise<ChargeResult>;
  refund(req: RefundRequest): Promise<RefundResult>;
  /**
   * Detaches a payment method from the provider's customer for good (GDPR erasure): it can never be
   * charged again. Idempotent; a method the provider does not know is detached already.
   */
  detach(token: string): Promise<void>;
  /** The charge made with this idempotency key, found by its metadata (works after the key expired). */
  findCharge(idempotencyKey: string): Promise<ChargeRecord | null>;
  listCharges(page: RecordPage): Promise<ChargeRecord[]>;
  listRefunds(page: RecordPage): Promise<RefundRecord[]>;
}
