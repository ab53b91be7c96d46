import type { TestMethod } from '../../domain/billing/payments';

/**
 * What each documented test payment method does to a charge or authorization (README "Payments sandbox"):
 *
 * | test method               | answer                                                                   |
 * |---------------------------|--------------------------------------------------------------------------|
 * | `test_ok`                 | 200 succeeded                                                            |
 * | `test_insufficient_funds` | 402 declined, code `insufficient_funds`, soft                            |
 * | `test_expired_card`       | 402 declined, code `expired_card`, hard (the card's expiry is past)      |
 * | `test_do_not_honor`       | 402 declined, code `do_not_honor`, hard                                  |
 * | `test_timeout`            | the first request for a key records a success, then holds its answer for |
 * |                           | `hangMs`; later requests with that key answer at once with that success  |
 * | `test_server_error`       | the first 2 requests for a key answer 503 and charge nothing; the 3rd    |
 * |                           | succeeds                                                                 |
 */
export type Behaviour =
  | { kind: 'succeed' }
  | { kind: 'decline'; code: string; retry: 'soft' | 'hard' }
  | { kind: 'hang' }
  | { kind: 'fail_then_succeed'; failures: number };

export interface MethodCard {
  brand: string;
  last4: string;
  expMonth: number;
  expYear: number;
  behaviour: Behaviour;
}

export const METHODS: Record<TestMethod, MethodCard> = {
  test_ok: { brand: 'visa', last4: '4242', expMonth: 12, expYear: 2034, behaviour: { kind: 'succeed' } },
  test_insufficient_funds: {
    brand: 'visa',
    last4: '9995',
    expMonth: 12,
    expYear: 2034,
    behaviour: { kind: 'decline', code: 'insufficient_funds', retry: 'soft' },
  },
  test_expired_card: {
    brand: 'mastercard',
    last4: '0069',
    expMonth: 1,
    expYear: 2020,
    behaviour: { kind: 'decline', code: 'expired_card', retry: 'hard' },
  },
  test_do_not_honor: {
    brand: 'visa',
    last4: '0002',
    expMonth: 12,
    expYear: 2034,
    behaviour: { kind: 'decline', code: 'do_not_honor', retry: 'hard' },
  },
  test_timeout: { brand: 'visa', last4: '0077', expMonth: 12, expYear: 2034, behaviour: { kind: 'hang' } },
  test_server_error: {
    brand: 'amex',
    last4: '0005',
    expMonth: 12,
    expYear: 2034,
    behaviour: { kind: 'fail_then_succeed', failures: 2 },
  },
};
