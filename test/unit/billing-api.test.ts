import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '../../lib/config';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';

/** Billing routes: who may act for whom, and bad input refused before any store or workflow is touched. */
describe('billing API input and scopes', () => {
  let cfg: Config;
  let app: FastifyInstance;
  const me = randomUUID();
  let listener: string;
  let service: string;
  beforeAll(async () => {
    cfg = withTempIssuer(loadConfig({ CADENZA_TEMPORAL_ADDRESS: '127.0.0.1:1' }));
    app = await testApp(cfg);
    listener = await tokenFor(cfg, me, ['listener']);
    service = await tokenFor(cfg, 'svc-web', ['service']);
  });
  afterAll(() => app.close());

  const post = (url: string, token: string, payload: unknown) =>
    app.inject({ method: 'POST', url, headers: bearer(token), payload: payload as object });

  it('refuses an unknown test method, naming the known ones', async () => {
    const res = await post('/v1/payment-methods', listener, { testMethod: 'test_visa' });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
  });

  it('lets a listener tokenise only for themselves', async () => {
    const res = await post('/v1/payment-methods', listener, { testMethod: 'test_ok', userId: randomUUID() });
    expect(res.statusCode).toBe(403);
    expect(res.json().detail).toMatch(/only for themselves/);
  });

  it('needs a userId from a service token', async () => {
    const res = await post('/v1/payment-methods', service, { testMethod: 'test_ok' });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors).toEqual([{ field: 'body.userId', message: 'required' }]);
  });

  it('refuses an unknown plan with the catalog in the answer', async () => {
    const res = await post('/v1/subscriptions', listener, {
      plan: 'platinum',
      paymentMethodId: randomUUID(),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors[0].message).toMatch(/premium-individual/);
  });

  it('refuses malformed bodies and IDs', async () => {
    const ok = { plan: 'premium-individual', paymentMethodId: randomUUID() };
    for (const body of [
      { ...ok, trialDays: 3651 },
      { ...ok, trialDays: -1 },
      { ...ok, paymentMethodId: 'x' },
      { ...ok, extra: 1 },
      { plan: 'demo' },
    ]) {
      expect((await post('/v1/subscriptions', listener, body)).statusCode).toBe(400);
    }
    const bad = await app.inject({
      method: 'GET',
      url: '/v1/subscriptions/not-a-uuid',
      headers: bearer(listener),
    });
    expect(bad.statusCode).toBe(400);
    const cancel = await post(`/v1/subscriptions/${randomUUID()}/cancel`, listener, { atPeriodEnd: 'soon' });
    expect(cancel.statusCode).toBe(400);
  });

  it('leaves the trial to the plan: a listener may decline it but not choose one; a service only within the bound', async () => {
    const ok = { plan: 'premium-individual', paymentMethodId: randomUUID() };
    const chosen = await post('/v1/subscriptions', listener, { ...ok, trialDays: 30 });
    expect(chosen.statusCode).toBe(403);
    expect(chosen.json().detail).toMatch(/plan’s trial/);
    const tooLong = await post('/v1/subscriptions', service, { ...ok, userId: me, trialDays: 91 });
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json().errors).toEqual([{ field: 'body.trialDays', message: 'at most 90' }]);
  });

  it('needs a userId from a service token to list subscriptions, and keeps listeners to their own', async () => {
    const list = (token: string, query = '') =>
      app.inject({ method: 'GET', url: `/v1/subscriptions${query}`, headers: bearer(token) });
    expect((await list(service)).statusCode).toBe(400);
    expect((await list(listener, `?userId=${randomUUID()}`)).statusCode).toBe(403);
    expect((await list(listener, '?extra=1')).statusCode).toBe(400);
  });

  it('is closed to scopes that do not act on subscriptions', async () => {
    const finance = await tokenFor(cfg, 'fin-1', ['finance']);
    const res = await app.inject({
      method: 'GET',
      url: `/v1/subscriptions/${randomUUID()}`,
      headers: bearer(finance),
    });
    expect(res.statusCode).toBe(403);
  });
});
