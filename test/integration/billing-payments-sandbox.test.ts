import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { sql, type DatabasePool } from 'slonik';
import { createPostgresPool } from '../../lib/clients/postgres';
import { createPaymentProvider } from '../../lib/clients/payments';
import {
  ProviderRequestError,
  TransientProviderError,
  type ChargeRequest,
  type TestMethod,
} from '../../domain/billing/payments';
import { SandboxControl, SandboxProvider } from '../../lib/clients/payments-sandbox';
import { ensureDatabase, ensureSchema } from '../../sandbox/payments/schema';
import { buildSandbox } from '../../sandbox/payments/server';
import { testConfig } from '../helpers/env';

/**
 * The sandbox payment provider as started by `npm run stack -- up`, through the client billing uses.
 * Every test uses its own idempotency keys and subscription ids, so it never meets other data.
 */
const cfg = testConfig();
const url = cfg.payments.sandbox.url;
const provider = new SandboxProvider({ url, timeoutMs: 5000 });
const control = new SandboxControl(url);
jest.setTimeout(30_000);

const newKey = () => `test-${randomUUID()}`;

async function chargeRequest(
  method: TestMethod,
  overrides: Partial<ChargeRequest> = {},
  via: SandboxProvider = provider,
): Promise<ChargeRequest> {
  const { token } = await via.tokenizeTestMethod(method);
  return {
    idempotencyKey: newKey(),
    token,
    amountMinor: 999,
    currency: 'EUR',
    metadata: { subscription_id: randomUUID(), period: '2025-06' },
    ...overrides,
  };
}

const recordsOf = (req: ChargeRequest) =>
  control.charges({ subscriptionId: req.metadata.subscription_id as string });

describe('payments sandbox (real service from npm run stack -- up)', () => {
  it('is the configured provider', () => {
    expect(createPaymentProvider(cfg.payments)).toBeInstanceOf(SandboxProvider);
  });

  it.each([
    ['test_ok', { outcome: 'succeeded' }],
    ['test_insufficient_funds', { outcome: 'declined', code: 'insufficient_funds', retry: 'soft' }],
    ['test_expired_card', { outcome: 'declined', code: 'expired_card', retry: 'hard' }],
    ['test_do_not_honor', { outcome: 'declined', code: 'do_not_honor', retry: 'hard' }],
  ] as const)('%s: %o', async (method, expected) => {
    const req = await chargeRequest(method);
    const result = await provider.charge(req);
    expect(result).toEqual({ ...expected, reference: expect.stringMatching(/^ch_/) });
    const [record, ...more] = await recordsOf(req);
    expect(more).toEqual([]);
    expect(record).toMatchObject({
      id: result.reference,
      status: expected.outcome,
      amount: 999,
      currency: 'EUR',
      idempotency_key: req.idempotencyKey,
      metadata: req.metadata,
    });
  });

  it('tokenizes test methods into fake card details; the expired card is expired', async () => {
    const ok = await provider.tokenizeTestMethod('test_ok');
    expect(ok).toEqual({
      token: expect.stringMatching(/^pm_/),
      brand: 'visa',
      last4: '4242',
      expMonth: 12,
      expYear: 2034,
    });
    const expired = await provider.tokenizeTestMethod('test_expired_card');
    expect(expired.expYear).toBeLessThan(new Date().getUTCFullYear());
    await expect(provider.tokenizeTestMethod('test_nope' as TestMethod)).rejects.toThrow(
      /test_ok, test_insufficient_funds/,
    );
  });

  it('an unknown payment method is a request error, not a retry', async () => {
    const req = await chargeRequest('test_ok', { token: 'pm_missing' });
    await expect(provider.charge(req)).rejects.toMatchObject({
      name: 'ProviderRequestError',
      code: 'resource_missing',
    });
  });

  it('charges a key once: the same key twice answers with the first result', async () => {
    const req = await chargeRequest('test_ok');
    const first = await provider.charge(req);
    const second = await provider.charge(req);
    expect(second).toEqual(first);
    const declined = await chargeRequest('test_insufficient_funds');
    expect(await provider.charge(declined)).toEqual(await provider.charge(declined));
    expect(await recordsOf(req)).toHaveLength(1);
    expect(await recordsOf(declined)).toHaveLength(1);
  });

  it('refuses a key reused with another amount', async () => {
    const req = await chargeRequest('test_ok');
    await provider.charge(req);
    const reused = provider.charge({ ...req, amountMinor: 1000 });
    await expect(reused).rejects.toBeInstanceOf(ProviderRequestError);
    await expect(reused).rejects.toMatchObject({ code: 'idempotency_key_reused' });
    expect(await recordsOf(req)).toHaveLength(1);
  });

  it('test_timeout: the first call times out after charging; the retry gets the same charge', async () => {
    const { hangMs } = await control.settings();
    expect(hangMs).toBeGreaterThan(2000);
    const impatient = new SandboxProvider({ url, timeoutMs: 500 });
    const req = await chargeRequest('test_timeout');
    const started = Date.now();
    await expect(impatient.charge(req)).rejects.toBeInstanceOf(TransientProviderError);
    expect(Date.now() - started).toBeLessThan(2000);
    const retried = await impatient.charge(req);
    expect(retried).toEqual({ outcome: 'succeeded', reference: expect.stringMatching(/^ch_/) });
    const records = await recordsOf(req);
    expect(records.map((r) => [r.id, r.idempotency_key, r.status])).toEqual([
      [retried.reference, req.idempotencyKey, 'succeeded'],
    ]);
    const summary = await control.summary({ subscriptionId: req.metadata.subscription_id });
    expect(summary).toEqual({ charges: 1, succeeded: 1, declined: 0, duplicates: 0, maxPerPeriod: 1 });
  });

  it('test_server_error: two transient failures, then one charge', async () => {
    const req = await chargeRequest('test_server_error');
    await expect(provider.charge(req)).rejects.toBeInstanceOf(TransientProviderError);
    await expect(provider.charge(req)).rejects.toBeInstanceOf(TransientProviderError);
    expect(await recordsOf(req)).toEqual([]);
    const result = await provider.charge(req);
    expect(result.outcome).toBe('succeeded');
    expect(await provider.charge(req)).toEqual(result);
    const records = await recordsOf(req);
    expect(records.map((r) => [r.id, r.attempts])).toEqual([[result.reference, 3]]);
  });

  it('20 concurrent requests with one key make exactly one charge', async () => {
    const req = await chargeRequest('test_ok');
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => provider.charge(req)));
    const references = new Set<string>();
    for (const r of results) {
      if (r.status === 'fulfilled') references.add(r.value.reference);
      // A request that met the first one in flight is told to retry, never charged a second time.
      else expect(r.reason).toBeInstanceOf(TransientProviderError);
    }
    references.add((await provider.charge(req)).reference);
    expect(references.size).toBe(1);
    const records = await recordsOf(req);
    expect(records.map((r) => r.id)).toEqual([...references]);
  });

  it('refunds up to the amount charged, each key once', async () => {
    const req = await chargeRequest('test_ok', { amountMinor: 1000 });
    const charge = await provider.charge(req);
    const refund = { idempotencyKey: newKey(), chargeReference: charge.reference, amountMinor: 400 };
    const first = await provider.refund(refund);
    expect(first).toEqual({ reference: expect.stringMatching(/^re_/), amountMinor: 400 });
    expect(await provider.refund(refund)).toEqual(first);
    await expect(
      provider.refund({ idempotencyKey: newKey(), chargeReference: charge.reference, amountMinor: 601 }),
    ).rejects.toMatchObject({ name: 'ProviderRequestError', code: 'amount_too_large' });
    await provider.refund({ idempotencyKey: newKey(), chargeReference: charge.reference, amountMinor: 600 });
    await expect(provider.refund({ ...refund, amountMinor: 1 })).rejects.toMatchObject({
      code: 'idempotency_key_reused',
    });
    const [record] = await recordsOf(req);
    expect(record).toMatchObject({ amount: 1000, amount_refunded: 1000 });
  });

  it('authorizations check a method without counting as charges', async () => {
    const ok = await chargeRequest('test_ok');
    const { amountMinor: _amount, ...authorization } = ok;
    const result = await provider.authorize(authorization);
    expect(result).toEqual({ outcome: 'succeeded', reference: expect.stringMatching(/^au_/) });
    expect(await provider.authorize(authorization)).toEqual(result);
    const expired = await chargeRequest('test_expired_card', { metadata: ok.metadata });
    const { amountMinor: _unused, ...expiredAuthorization } = expired;
    expect(await provider.authorize(expiredAuthorization)).toMatchObject({
      outcome: 'declined',
      code: 'expired_card',
      retry: 'hard',
    });
    expect(await recordsOf(ok)).toEqual([]);
    expect((await control.summary({ subscriptionId: ok.metadata.subscription_id })).charges).toBe(0);
  });

  it('failureRate 1 makes every call a transient failure that charges nothing', async () => {
    const req = await chargeRequest('test_ok');
    const before = await control.settings();
    try {
      await control.updateSettings({ failureRate: 1 });
      await expect(provider.charge(req)).rejects.toBeInstanceOf(TransientProviderError);
    } finally {
      await control.updateSettings(before);
    }
    expect(await control.settings()).toEqual(before);
    expect(await recordsOf(req)).toEqual([]);
    expect((await provider.charge(req)).outcome).toBe('succeeded');
  });

  it('a provider that does not answer is a transient failure', async () => {
    const nowhere = new SandboxProvider({ url: 'http://127.0.0.1:1', timeoutMs: 1000 });
    await expect(nowhere.charge(await chargeRequest('test_ok'))).rejects.toBeInstanceOf(
      TransientProviderError,
    );
  });
});

/** What may not touch the shared service (reset, a deliberate double charge): an instance of its own. */
describe('payments sandbox in-process, on a scratch database', () => {
  const database = `cadenza_sandbox_t_${randomBytes(4).toString('hex')}`;
  let pool: DatabasePool;
  let app: ReturnType<typeof buildSandbox>;
  let local: SandboxProvider;
  let localControl: SandboxControl;
  let localUrl: string;

  beforeAll(async () => {
    await ensureDatabase(cfg.postgres, database);
    await ensureDatabase(cfg.postgres, database); // a second start finds it
    pool = await createPostgresPool({ ...cfg.postgres, database }, 4);
    await ensureSchema(pool);
    await ensureSchema(pool);
    app = buildSandbox({
      pool,
      settings: { latencyMs: 0, failureRate: 0, hangMs: 20_000, keyLifetimeMs: 0 },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    localUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    local = new SandboxProvider({ url: localUrl, timeoutMs: 5000 });
    localControl = new SandboxControl(localUrl);
  });

  afterAll(async () => {
    await app?.close();
    await pool?.end();
    const admin = await createPostgresPool(cfg.postgres, 1);
    await admin.query(sql.unsafe`DROP DATABASE IF EXISTS ${sql.identifier([database])} WITH (FORCE)`);
    await admin.end();
  });

  it('counts successful charges per (subscription, period), and reset empties it', async () => {
    const charge = async (method: TestMethod, period: string) =>
      local.charge(await chargeRequest(method, { metadata: { subscription_id: 'sub-1', period } }, local));
    await charge('test_ok', '2025-06');
    await charge('test_ok', '2025-07');
    await charge('test_do_not_honor', '2025-08');
    const clean = { charges: 3, succeeded: 2, declined: 1, duplicates: 0, maxPerPeriod: 1 };
    expect(await localControl.summary()).toEqual(clean);
    // A second successful charge for one period, under another key, is what the summary exists to catch.
    await charge('test_ok', '2025-06');
    expect(await localControl.summary()).toEqual({
      ...clean,
      charges: 4,
      succeeded: 3,
      duplicates: 1,
      maxPerPeriod: 2,
    });
    expect(await localControl.summary({ subscriptionId: 'sub-2' })).toMatchObject({ charges: 0 });
    await localControl.reset();
    expect(await localControl.summary()).toEqual({
      charges: 0,
      succeeded: 0,
      declined: 0,
      duplicates: 0,
      maxPerPeriod: 0,
    });
  });

  it('answers bad requests with 400 and says which parameter', async () => {
    const { token } = await local.tokenizeTestMethod('test_ok');
    const post = (body: unknown, key: string | null = newKey()) =>
      app.inject({
        method: 'POST',
        url: '/v1/charges',
        headers: key ? { 'idempotency-key': key } : {},
        payload: body as Record<string, unknown>,
      });
    const good = { payment_method: token, amount: 100, currency: 'EUR', metadata: {} };
    const missingKey = await post(good, null);
    expect([missingKey.statusCode, missingKey.json().error.code]).toEqual([400, 'idempotency_key_invalid']);
    expect((await post(good, 'short')).statusCode).toBe(400);
    for (const [param, bad] of [
      ['amount', { ...good, amount: 0 }],
      ['amount', { ...good, amount: 1.5 }],
      ['currency', { ...good, currency: 'EURO' }],
      ['metadata.x', { ...good, metadata: { x: 1 } }],
    ] as const) {
      const res = await post(bad);
      expect([res.statusCode, res.json().error.param]).toEqual([400, param]);
    }
    expect((await post(good)).statusCode).toBe(200);
  });

  it('lets a held test_timeout answer go when the server stops', async () => {
    const req = await chargeRequest('test_timeout', {}, local);
    const patient = new SandboxProvider({ url: localUrl, timeoutMs: 15_000 });
    const held = patient.charge(req);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await app.close();
    expect(await held).toMatchObject({ outcome: 'succeeded' });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
