import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { signWithDevKey } from '../../api/auth/dev-issuer';
import { createVerifier } from '../../api/auth/verifier';
import { keyOf } from '../../api/auth/address-limiter';
import { loadConfig, type Config } from '../../lib/config';
import { PING_ACTIVITY_TIMEOUT_MS } from '../../workflows/ops/contract';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';

/**
 * The API hardening of issue 20 that needs no store: token claims, the per-address limit before any
 * signature check, 405 with Allow, closed query strings, optional bodies, and an OpenAPI document that
 * says all of it. (Stores, sockets and production mode: test/integration/api-*.test.ts, api-http.test.ts.)
 */
type Res = { statusCode: number; headers: Record<string, unknown>; json: () => Record<string, unknown> };
const expectProblem = (res: Res, status: number, slug?: string) => {
  expect({ status: res.statusCode, body: res.json() }).toMatchObject({ status });
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  if (slug) expect(res.json().type).toBe(`urn:cadenza:problem:${slug}`);
};

describe('token claims (RFC 9068, JWT BCP) and subjects per role', () => {
  let cfg: Config;
  let app: FastifyInstance;
  const now = () => Math.floor(Date.now() / 1000);
  beforeAll(async () => {
    cfg = withTempIssuer(loadConfig({ CADENZA_TEMPORAL_ADDRESS: '127.0.0.1:1' }));
    app = await testApp(cfg);
  });
  afterAll(() => app.close());

  const claims = (over: Record<string, unknown>) => ({
    iss: cfg.auth.issuer,
    aud: cfg.auth.audience,
    sub: 'svc-1',
    scope: 'service',
    iat: now() - 10,
    exp: now() + 600,
    ...over,
  });
  const tick = (userId: string) => ({
    event_id: randomUUID(),
    play_id: randomUUID(),
    user_id: userId,
    track_id: randomUUID(),
    country: 'DE',
    device_id: 'd',
    position_ms: 0,
    event_time: new Date().toISOString(),
  });
  const sendTicks = async (token: string) =>
    app.inject({
      method: 'POST',
      url: '/v1/play-ticks',
      headers: bearer(token),
      payload: { ticks: [tick(randomUUID())] },
    });

  it.each([
    ['a number', 42],
    ['an object', { id: 'x' }],
    ['an array', ['a', 'b']],
    ['empty', ''],
    ['with spaces', 'a b'],
  ])('refuses a signed token whose sub is %s with 401, never 500', async (_what, sub) => {
    const token = await signWithDevKey(cfg.auth, claims({ sub }), { typ: 'at+jwt' });
    expectProblem(await sendTicks(token), 401, 'unauthorized');
  });

  it("refuses listener and creator tokens whose sub is not the person's UUID, at the auth layer", async () => {
    for (const scope of ['listener', 'creator']) {
      const token = await signWithDevKey(cfg.auth, claims({ sub: 'me', scope }));
      for (const url of ['/v1/payment-methods', '/v1/subscriptions', '/v1/play-ticks']) {
        const res = await app.inject({ method: 'POST', url, headers: bearer(token), payload: {} });
        expectProblem(res, 401, 'unauthorized');
        expect(res.json().detail).toMatch(/UUID/);
      }
    }
    // A service's sub is its client ID: any printable string.
    expect((await sendTicks(await signWithDevKey(cfg.auth, claims({ sub: 'svc:web-1' })))).statusCode).toBe(
      202,
    );
  });

  it('reads a UUID subject in lower case, so ownership checks do not depend on its spelling', async () => {
    const me = randomUUID();
    const token = await signWithDevKey(cfg.auth, claims({ sub: me.toUpperCase(), scope: 'listener' }));
    const res = await app.inject({
      method: 'POST',
      url: '/v1/play-ticks',
      headers: bearer(token),
      payload: { ticks: [tick(me)] },
    });
    expect(res.json()).toMatchObject({ accepted: 1, rejected: [] });
  });

  it('refuses a token without exp, with iat in the future, or living longer than the maximum', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ exp: undefined }, /exp/],
      [{ iat: now() + 3600 }, /iat/],
      [{ iat: now(), exp: now() + cfg.auth.maxTokenLifetimeSeconds + 60 }, /longer/],
      [{ iat: undefined, exp: now() + cfg.auth.maxTokenLifetimeSeconds + 60 }, /longer/],
      [{ sub: undefined }, /sub/],
    ];
    for (const [over, detail] of cases) {
      const res = await sendTicks(await signWithDevKey(cfg.auth, claims(over)));
      expectProblem(res, 401, 'unauthorized');
      expect([over, res.json().detail]).toEqual([over, expect.stringMatching(detail)]);
    }
    // Within the clock tolerance an iat slightly ahead is fine (the issuer's clock runs a little fast).
    const ahead = await signWithDevKey(cfg.auth, claims({ iat: now() + cfg.auth.clockToleranceSeconds - 5 }));
    expect((await sendTicks(ahead)).statusCode).toBe(202);
  });

  it('checks typ where the token sets one: access tokens (at+jwt, JWT) pass, other JWT types do not', async () => {
    for (const typ of ['at+jwt', 'application/at+jwt', 'JWT'])
      expect([
        typ,
        (await sendTicks(await signWithDevKey(cfg.auth, claims({}), { typ }))).statusCode,
      ]).toEqual([typ, 202]);
    for (const typ of ['dpop+jwt', 'logout+jwt', 'secevent+jwt']) {
      const res = await sendTicks(await signWithDevKey(cfg.auth, claims({}), { typ }));
      expectProblem(res, 401, 'unauthorized');
    }
    // No typ at all is accepted: many issuers do not set one.
    expect((await sendTicks(await signWithDevKey(cfg.auth, claims({})))).statusCode).toBe(202);
  });
});

describe('requests without a valid token, limited per address before any signature check', () => {
  it('answers 429 with Retry-After once an address spent its budget, verifying nothing more', async () => {
    const cfg = withTempIssuer(
      loadConfig({ CADENZA_TEMPORAL_ADDRESS: '127.0.0.1:1', CADENZA_API_AUTH_FAILURES_PER_MINUTE: '5' }),
    );
    const real = await createVerifier(cfg.auth);
    let verifications = 0;
    const verify = Object.assign(
      async (header: string | undefined) => {
        verifications++;
        return real(header);
      },
      { remembered: real.remembered },
    );
    const app = await testApp(cfg, { verify });
    try {
      const good = await tokenFor(cfg, 'svc-good', ['service']);
      const freshGood = await tokenFor(cfg, 'svc-late', ['service']);
      const post = (token: string | undefined, ip = '203.0.113.7') =>
        app.inject({
          method: 'POST',
          url: '/v1/play-ticks',
          remoteAddress: ip,
          headers: token ? bearer(token) : {},
          payload: { ticks: [] },
        });
      // A valid token, verified once, is remembered: the fast path never meets the address limit.
      expect((await post(good)).statusCode).toBe(400);
      const forged = (i: number) => `${good.slice(0, -6)}AAAA${i}A`;
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await post(forged(i))).statusCode);
      expect(statuses).toEqual([401, 401, 401, 401, 401]);
      const before = verifications;
      const limited = await post(forged(99));
      expectProblem(limited, 429, 'rate-limited');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
      expect((await post(undefined)).statusCode).toBe(429); // no token at all: the same budget
      expect((await post(freshGood)).statusCode).toBe(429); // an unknown token waits too
      expect(verifications).toBe(before); // …and none of them cost a signature check
      expect((await post(good)).statusCode).toBe(400); // the remembered one still passes
      // Another address has its own budget; an IPv6 /64 counts as one address.
      expect((await post(forged(7), '198.51.100.1')).statusCode).toBe(401);
      expect(keyOf('2001:db8:1:2:aaaa::1')).toBe(keyOf('2001:db8:1:2:bbbb::2'));
      expect(keyOf('::ffff:203.0.113.7')).toBe('203.0.113.7');
    } finally {
      await app.close();
    }
  });

  it('remembers a refused token, so the same forgery is refused from memory', async () => {
    const cfg = withTempIssuer(loadConfig({ CADENZA_TEMPORAL_ADDRESS: '127.0.0.1:1' }));
    const verify = await createVerifier(cfg.auth);
    const token = await tokenFor(cfg, 'svc-2', ['service']);
    const altered = `Bearer ${token.slice(0, -3)}${token.at(-3) === 'A' ? 'B' : 'A'}${token.slice(-2)}`;
    expect(verify.remembered(altered)).toBeUndefined();
    await expect(verify(altered)).rejects.toThrow('could not be verified');
    expect(verify.remembered(altered)).toEqual(expect.objectContaining({ status: 401 }));
    expect(verify.remembered(`Bearer ${token}`)).toBeUndefined(); // the genuine one was never seen
  });
});

describe('routes, methods and the OpenAPI document', () => {
  let cfg: Config;
  let app: FastifyInstance;
  let ops: string;
  beforeAll(async () => {
    // Temporal (and, in unit tests, PostgreSQL) is unreachable here: a handler that gets as far as a store
    // answers 503 within a second.
    cfg = withTempIssuer(
      loadConfig({ CADENZA_TEMPORAL_ADDRESS: '127.0.0.1:1', CADENZA_API_HANDLER_TIMEOUT_MS: '1000' }),
    );
    app = await testApp(cfg);
    ops = await tokenFor(cfg, 'ops', ['operator', 'service']);
  });
  afterAll(() => app.close());

  it('answers a known path with another method 405 and Allow, an unknown path 404', async () => {
    const cases: [string, string, string][] = [
      ['TRACE', '/v1/ping', 'POST'],
      ['GET', '/v1/ping', 'POST'],
      ['DELETE', '/v1/workflows/some-id', 'GET, HEAD'],
      ['PUT', '/v1/subscriptions/00000000-0000-4000-8000-000000000001/cancel', 'POST'],
      ['OPTIONS', '/healthz', 'GET, HEAD'],
    ];
    for (const [method, url, allow] of cases) {
      const res = await app.inject({ method: method as 'GET', url, headers: bearer(ops) });
      expectProblem(res, 405, 'method-not-allowed');
      expect([method, url, res.headers.allow]).toEqual([method, url, allow]);
    }
    expectProblem(await app.inject({ method: 'TRACE', url: '/v1/nothing' }), 404, 'not-found');
  });

  it('refuses query parameters a route does not declare, including on routes that declare none', async () => {
    for (const url of [
      '/v1/workflows?pageSize=5&debug=1',
      '/v1/ping?x=1',
      '/v1/workflows/abc?verbose=true',
    ]) {
      const res = await app.inject({
        method: url.startsWith('/v1/ping') ? 'POST' : 'GET',
        url,
        headers: bearer(ops),
        payload: url.startsWith('/v1/ping') ? { token: 'a' } : undefined,
      });
      expectProblem(res, 400, 'validation');
      expect(res.json().detail).toMatch(/querystring/);
    }
  });

  it('refuses dates the stores cannot hold with 400: leap seconds, before 2000, after 2099', async () => {
    const fin = await tokenFor(cfg, 'fin', ['finance']);
    for (const at of [
      '2016-12-31T23:59:60Z',
      '0700-03-23T00:00:00Z',
      '1969-12-31T23:59:59Z',
      '2150-01-01T00:00:00Z',
    ]) {
      const res = await app.inject({
        method: 'GET',
        url: `/v1/analytics/early-churn?at=${encodeURIComponent(at)}`,
        headers: bearer(fin),
      });
      expectProblem(res, 400, 'validation');
    }
    const creator = await tokenFor(cfg, 'creator-ops', ['operator']);
    const artist = randomUUID();
    for (const q of ['from=0700-01-01&to=0700-01-02', 'from=2024-01-01&to=2024-02-30'])
      expectProblem(
        await app.inject({
          method: 'GET',
          url: `/v1/artists/${artist}/stats?${q}`,
          headers: bearer(creator),
        }),
        400,
        'validation',
      );
  });

  it('lets a body that requires nothing be left out: its defaults apply (cancel at the period end)', async () => {
    const res = await app.inject({
      method: 'POST',
      url: `/v1/subscriptions/${randomUUID()}/cancel`,
      headers: bearer(ops),
    });
    // Past validation to the workflow, which is unreachable here: 503, not 400.
    expectProblem(res, 503, 'unavailable');
    expect(res.headers['retry-after']).toBe(String(cfg.api.retryAfterSeconds));
  });

  it('bounds ping work by the activity timeout', async () => {
    const ping = (workMs: number) =>
      app.inject({ method: 'POST', url: '/v1/ping', headers: bearer(ops), payload: { token: 'w', workMs } });
    expectProblem(await ping(600_000), 400, 'validation');
    expectProblem(await ping(PING_ACTIVITY_TIMEOUT_MS), 400, 'validation');
    expectProblem(await ping(60_000), 503, 'unavailable'); // accepted; Temporal is not reachable here
  });

  it('documents every error as application/problem+json with the Problem schema', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json() as {
      paths: Record<string, Record<string, Record<string, unknown>>>;
      components: { schemas: Record<string, unknown> };
    };
    expect(Object.keys(doc.components.schemas)).toContain('Problem');
    let operations = 0;
    for (const [path, item] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(item)) {
        operations++;
        const responses = op.responses as Record<string, { content?: Record<string, { schema: unknown }> }>;
        const errors = Object.entries(responses).filter(([s]) => Number(s) >= 400);
        if (path !== '/readyz') expect([path, method, errors.length > 0]).toEqual([path, method, true]);
        for (const [status, r] of errors) {
          if (path === '/readyz' && status === '503') continue; // readiness answers its checks as JSON
          expect([path, method, status, Object.keys(r.content ?? {})]).toEqual([
            path,
            method,
            status,
            ['application/problem+json'],
          ]);
        }
        if (op.security === undefined || (op.security as unknown[]).length > 0) {
          expect(Object.keys(responses)).toEqual(expect.arrayContaining(['400', '401', '403', '429', '503']));
          expect(String(op.description)).toMatch(/Needs a bearer token with one of the scopes/);
        }
      }
    expect(operations).toBeGreaterThan(10);
    // Dates say what the stores hold, userId says when it is required, and an optional body is optional.
    const early = doc.paths['/v1/analytics/early-churn']?.get as {
      parameters: { name: string; schema: { pattern?: string } }[];
    };
    expect(early.parameters.find((p) => p.name === 'at')?.schema.pattern).toMatch(/\^20/);
    const subs = doc.paths['/v1/subscriptions']?.post as {
      requestBody: {
        content: Record<string, { schema: { properties: Record<string, { description?: string }> } }>;
      };
    };
    expect(subs.requestBody.content['application/json']?.schema.properties.userId?.description).toMatch(
      /required with a service or operator token/,
    );
    const cancel = doc.paths['/v1/subscriptions/{id}/cancel']?.post as { requestBody: { required: boolean } };
    expect(cancel.requestBody.required).toBe(false);
  });
});
