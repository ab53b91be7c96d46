import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '../../lib/config';
import { SCOPES, type Scope } from '../../api/auth/scopes';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';

/** Walks every registered route: each non-public one refuses a missing, forged, expired or under-scoped token. */
const PUBLIC = ['/healthz', '/readyz', '/metrics', '/.well-known/jwks.json'];

describe('API authentication on every route', () => {
  let cfg: Config;
  let app: FastifyInstance;
  let forger: Config;
  beforeAll(async () => {
    // Every route is refused a few times here: the per-address limit on failed logins is not what is tested.
    cfg = withTempIssuer(
      loadConfig({ CADENZA_TEMPORAL_ADDRESS: '127.0.0.1:1', CADENZA_API_AUTH_FAILURES_PER_MINUTE: '100000' }),
    );
    forger = withTempIssuer(cfg); // same issuer and audience, a different signing key
    app = await testApp(cfg);
  });
  afterAll(async () => {
    await app.close();
  });

  const guarded = () => app.routeTable.filter((r) => !r.public);
  const concrete = (url: string) => url.replace(/:(\w+)/g, 'x-$1');
  const expectProblem = (
    res: { statusCode: number; headers: Record<string, unknown>; json: () => { type: string } },
    status: number,
    slug: string,
  ) => {
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json().type).toBe(`urn:cadenza:problem:${slug}`);
  };

  it('leaves only health, metrics, docs and the JWKS public', () => {
    const publicUrls = app.routeTable.filter((r) => r.public).map((r) => r.url);
    for (const url of publicUrls) expect(PUBLIC.includes(url) || url.startsWith('/docs')).toBe(true);
    expect(guarded().length).toBeGreaterThanOrEqual(4);
  });

  it('declares the scopes each guarded route needs', () => {
    for (const r of guarded())
      expect({ route: `${r.method} ${r.url}`, scopes: r.scopes.length > 0 }).toEqual({
        route: `${r.method} ${r.url}`,
        scopes: true,
      });
  });

  it('refuses a request without a token', async () => {
    for (const r of guarded()) {
      const res = await app.inject({
        method: r.method as 'GET',
        url: concrete(r.url),
        payload: r.method === 'GET' ? undefined : {},
      });
      expectProblem(res, 401, 'unauthorized');
    }
  });

  it('refuses a token signed by another key', async () => {
    const forged = await tokenFor(forger, '00000000-0000-4000-8000-00000000000f', [...SCOPES]);
    for (const r of guarded()) {
      const res = await app.inject({
        method: r.method as 'GET',
        url: concrete(r.url),
        headers: bearer(forged),
      });
      expectProblem(res, 401, 'unauthorized');
    }
  });

  it('refuses an expired token', async () => {
    const expired = await tokenFor(cfg, '00000000-0000-4000-8000-00000000000e', [...SCOPES], -120);
    for (const r of guarded()) {
      const res = await app.inject({
        method: r.method as 'GET',
        url: concrete(r.url),
        headers: bearer(expired),
      });
      expectProblem(res, 401, 'unauthorized');
      expect(res.json().detail).toMatch(/expired/);
    }
  });

  it('refuses a valid token without one of the route scopes', async () => {
    for (const r of guarded()) {
      const others = SCOPES.filter((s) => !r.scopes.includes(s)) as Scope[];
      // A person's scopes need the person's UUID as subject.
      const token = await tokenFor(cfg, '00000000-0000-4000-8000-000000000001', others);
      const res = await app.inject({
        method: r.method as 'GET',
        url: concrete(r.url),
        headers: bearer(token),
      });
      expectProblem(res, 403, 'forbidden');
    }
  });

  it('answers 400 problem+json naming the fields that failed validation', async () => {
    const token = await tokenFor(cfg, 'ops', ['operator']);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/ping',
      headers: bearer(token),
      payload: { token: 5, extra: true },
    });
    expectProblem(res, 400, 'validation');
    const fields = (res.json() as { errors: { field: string }[] }).errors.map((e) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['body.token', 'body.extra']));
  });

  it('answers unknown routes with 404 problem+json', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/nothing-here' });
    expectProblem(res, 404, 'not-found');
  });

  it('publishes an OpenAPI document generated from the route schemas', async () => {
    const res = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json() as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/ping', '/v1/workflows/{id}', '/v1/workflows']),
    );
  });

  it('answers /healthz without a token and carries a request ID', async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'req-123' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-request-id']).toBe('req-123');
  });
});

describe('API limits', () => {
  it('limits requests per token with 429 problem+json and Retry-After, and leaves health alone', async () => {
    const cfg = withTempIssuer(
      loadConfig({ CADENZA_TEMPORAL_ADDRESS: '127.0.0.1:1', CADENZA_API_RATE_LIMIT: '3' }),
    );
    const app = await testApp(cfg);
    try {
      const token = await tokenFor(cfg, 'busy-client', ['operator']);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/ping',
          headers: bearer(token),
          payload: { token: 5 },
        });
        statuses.push(res.statusCode);
        if (res.statusCode === 429) {
          expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
          expect(res.json().type).toBe('urn:cadenza:problem:rate-limited');
          expect(res.headers['retry-after']).toBeDefined();
        }
      }
      expect(statuses).toEqual([400, 400, 400, 429, 429]);
      // Another token has its own budget; health is never limited.
      const other = await tokenFor(cfg, 'calm-client', ['operator']);
      expect(
        (await app.inject({ method: 'POST', url: '/v1/ping', headers: bearer(other), payload: { token: 5 } }))
          .statusCode,
      ).toBe(400);
      for (let i = 0; i < 5; i++)
        expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('refuses a body over the limit with 413 problem+json', async () => {
    const cfg = withTempIssuer(
      loadConfig({ CADENZA_TEMPORAL_ADDRESS: '127.0.0.1:1', CADENZA_API_BODY_LIMIT: '2048' }),
    );
    const app = await testApp(cfg);
    try {
      const token = await tokenFor(cfg, 'big', ['operator']);
      const res = await app.inject({
        method: 'POST',
        url: '/v1/ping',
        headers: { ...bearer(token), 'content-type': 'application/json' },
        payload: JSON.stringify({ token: 'x'.repeat(5000) }),
      });
      expect(res.statusCode).toBe(413);
      expect(res.json().type).toBe('urn:cadenza:problem:payload-too-large');
    } finally {
      await app.close();
    }
  });
});
