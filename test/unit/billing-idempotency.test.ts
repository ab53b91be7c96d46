import { IdempotencyKeyReusedError, requestFingerprint } from '../../api/lib/idempotency';
import { subscriptionIdOf, subscriptionWorkflowId } from '../../workflows/billing/contract';

/** Idempotency-Keys are bound to a request by a fingerprint of its body; workflow IDs name their subscription. */
describe('billing idempotency and IDs', () => {
  it('fingerprints a body by its content, not its property order', () => {
    const a = requestFingerprint({ plan: 'demo', paymentMethodId: 'x', trialDays: null });
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(requestFingerprint({ trialDays: null, paymentMethodId: 'x', plan: 'demo' })).toBe(a);
    expect(requestFingerprint({ plan: 'demo-plus', paymentMethodId: 'x', trialDays: null })).not.toBe(a);
    expect(requestFingerprint({ plan: 'demo', paymentMethodId: 'x', trialDays: 0 })).not.toBe(a);
    expect(requestFingerprint(undefined)).toBe(requestFingerprint(null));
  });

  it('refuses a reused key as 422 problem', () => {
    const err = new IdempotencyKeyReusedError('used');
    expect([err.status, err.type]).toEqual([422, 'urn:cadenza:problem:idempotency-key-reused']);
  });

  it("reads a subscription's ID back from its workflow ID, and nothing else", () => {
    const id = '0b6c2f44-7a31-4d4e-9c3e-2f1a9d2b7c10';
    expect(subscriptionIdOf(subscriptionWorkflowId(id))).toBe(id);
    expect(subscriptionIdOf(`ping-${id}`)).toBeNull();
    expect(subscriptionIdOf(`subscription-${id}-x`)).toBeNull();
  });
});
