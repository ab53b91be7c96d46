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
}
