import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { sql, type DatabasePool } from 'slonik';
import { signWithDevKey } from '../../api/auth/dev-issuer';
import { isStoreOutage } from '../../api/problems';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { createKafka } from '../../lib/clients/kafka';
import { createMinio } from '../../lib/clients/minio';
import { createOpenSearch } from '../../lib/clients/opensearch';
import { createPostgresPool } from '../../lib/clients/postgres';
import type { Config } from '../../lib/config';
import { migrateClickHouse } from '../../sql/migrate/clickhouse';
import { migratePostgres } from '../../sql/migrate/postgres';
import { scratchDatabases } from '../../stack/scratch';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';
import { testConfig } from '../helpers/env';
import { outageProxy, type OutageProxy } from '../helpers/outage-proxy';

/**
 * Every bad input of issue 20 that used to answer 500, against the real stores: each is a 4xx problem
 * now. And a store that is down (cut behind a proxy, never stopped) is 503 problem+json with Retry-After,
 * whichever client noticed it.
 */
type Res = { statusCode: number; headers: Record<string, unknown>; json: () => Record<string, unknown> };
const expectProblem = (res: Res, status: number, slug: string) => {
  expect({ status: res.statusCode, body: res.json() }).toMatchObject({
    status,
    body: { type: `urn:cadenza:problem:${slug}` },
  });
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
};

describe('bad input against the real stores: 4xx, never 500', () => {
  let db: Awaited<ReturnType<typeof scratchDatabases>>;
  let cfg: Config;
  let pool: DatabasePool;
  let ch: ClickHouseClient;
  let connection: Connection;
  let temporal: Client;
  let app: FastifyInstance;
  let ops: string;

  beforeAll(async () => {
    db = await scratchDatabases(testConfig());
    await migratePostgres(db.config.postgres);
    await migrateClickHouse(db.config.clickhouse);
    cfg = withTempIssuer(db.config);
    pool = await createPostgresPool(cfg.postgres, 2);
    ch = createClickHouse(cfg.clickhouse);
    connection = await Connection.connect({ address: cfg.temporal.address });
    temporal = new Client({ connection, namespace: cfg.temporal.namespace });
    app = await testApp(cfg, { pool, clickhouse: ch, temporal });
    ops = await tokenFor(cfg, 'ops', ['operator', 'finance']);
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await connection?.close();
    await ch?.close();
    await pool?.end();
    await db?.drop();
  });

  it("refuses a listener token whose sub is not a UUID (the README's --sub me) before PostgreSQL sees it", async () => {
    const me = await tokenFor(cfg, 'me', ['listener']);
    const paymentMethod = await app.inject({
      method: 'POST',
      url: '/v1/payment-methods',
      headers: bearer(me),
      payload: { testMethod: 'test_ok' },
    });
    expectProblem(paymentMethod, 401, 'unauthorized');
    const subscription = await app.inject({
      method: 'POST',
      url: '/v1/subscriptions',
      headers: bearer(me),
      payload: { plan: 'premium', paymentMethodId: randomUUID() },
    });
    expectProblem(subscription, 401, 'unauthorized');
  });

  it('refuses a signed token whose sub is a number, object or array', async () => {
    const now = Math.floor(Date.now() / 1000);
    for (const sub of [7, { a: 1 }, ['x']]) {
      const token = await signWithDevKey(cfg.auth, {
        iss: cfg.auth.issuer,
        aud: cfg.auth.audience,
        sub,
        scope: 'operator finance',
        iat: now,
        exp: now + 300,
      });
      const res = await app.inject({
        method: 'GET',
        url: '/v1/analytics/account-sharing',
        headers: bearer(token),
      });
      expectProblem(res, 401, 'unauthorized');
    }
  });

  it('refuses a page token Temporal never gave out', async () => {
    for (const pageToken of ['AAAA', 'eyJ9', 'not-a-token'])
      expectProblem(
        await app.inject({
          method: 'GET',
          url: `/v1/workflows?pageToken=${pageToken}`,
          headers: bearer(ops),
        }),
        400,
        'validation',
      );
    // A real one still pages.
    const first = await app.inject({ method: 'GET', url: '/v1/workflows?pageSize=1', headers: bearer(ops) });
    expect(first.statusCode).toBe(200);
    const next = first.json().nextPageToken as string | undefined;
    if (next)
      expect(
        (
          await app.inject({
            method: 'GET',
            url: `/v1/workflows?pageSize=1&pageToken=${next}`,
            headers: bearer(ops),
          })
        ).statusCode,
      ).toBe(200);
  });

  it('refuses leap-second, pre-1970 and far-future `at` on every analytics route that takes one', async () => {
    const routes = ['premium-top-countries', 'account-sharing', 'early-churn', 'retention-cohorts'];
    for (const route of routes)
      for (const at of [
        '2016-12-31T23:59:60Z',
        '0700-03-23T00:00:00Z',
        '1969-07-20T20:17:40Z',
        '2107-01-01T00:00:00Z',
      ])
        expectProblem(
          await app.inject({
            method: 'GET',
            url: `/v1/analytics/${route}?at=${encodeURIComponent(at)}`,
            headers: bearer(ops),
          }),
          400,
          'validation',
        );
    const bot = `/v1/analytics/bot-suspects?userId=${randomUUID()}&at=${encodeURIComponent('2016-12-31T23:59:60Z')}`;
    expectProblem(await app.inject({ method: 'GET', url: bot, headers: bearer(ops) }), 400, 'validation');
    // The edges the stores hold still answer.
    for (const at of ['2000-01-01T00:00:00Z', '2099-12-31T23:59:59+14:00'])
      expect(
        (
          await app.inject({
            method: 'GET',
            url: `/v1/analytics/early-churn?days=366&at=${encodeURIComponent(at)}`,
            headers: bearer(ops),
          })
        ).statusCode,
      ).toBe(200);
  });

  it('answers a cancellation of a workflow that has closed 409, not 202', async () => {
    const id = `api-closed-${randomUUID()}`;
    const handle = await temporal.workflow.start('ping', {
      taskQueue: 'api-test-nobody',
      workflowId: id,
      args: [{ token: 't' }],
    });
    await handle.terminate('closed for the test');
    const res = await app.inject({ method: 'POST', url: `/v1/workflows/${id}/cancel`, headers: bearer(ops) });
    expectProblem(res, 409, 'workflow-closed');
    expectProblem(
      await app.inject({
        method: 'POST',
        url: `/v1/workflows/nothing-${randomUUID()}/cancel`,
        headers: bearer(ops),
      }),
      404,
      'not-found',
    );
  });
});

describe('a store that is down: 503 problem+json with Retry-After', () => {
  let db: Awaited<ReturnType<typeof scratchDatabases>>;
  let cfg: Config;
  const proxies: OutageProxy[] = [];
  let pool: DatabasePool;
  let ch: ClickHouseClient;
  let app: FastifyInstance;
  let ops: string;
  let pgProxy: OutageProxy;
  let chProxy: OutageProxy;

  beforeAll(async () => {
    db = await scratchDatabases(testConfig());
    await migratePostgres(db.config.postgres);
    await migrateClickHouse(db.config.clickhouse);
    pgProxy = await outageProxy({ host: db.config.postgres.host, port: db.config.postgres.port });
    chProxy = await outageProxy({ host: db.config.clickhouse.host, port: db.config.clickhouse.httpPort });
    proxies.push(pgProxy, chProxy);
    cfg = withTempIssuer({
      ...db.config,
      postgres: { ...db.config.postgres, port: pgProxy.port },
      clickhouse: { ...db.config.clickhouse, url: `http://${chProxy.address}` },
    });
    pool = await createPostgresPool(cfg.postgres, 2);
    ch = createClickHouse(cfg.clickhouse);
    app = await testApp(cfg, { pool, clickhouse: ch });
    ops = await tokenFor(cfg, 'ops', ['operator', 'finance']);
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await ch?.close();
    await pool?.end();
    await Promise.all(proxies.map((p) => p.close()));
    await db?.drop();
  });

  const get = (url: string) => app.inject({ method: 'GET', url, headers: bearer(ops) });

  it('ClickHouse down: analytics answer 503 with Retry-After, and 200 again once it is back', async () => {
    const url = '/v1/analytics/early-churn?at=2025-05-20T12:00:00Z';
    expect((await get(url)).statusCode).toBe(200);
    chProxy.cut();
    try {
      const res = await get(url);
      expectProblem(res, 503, 'unavailable');
      expect(res.headers['retry-after']).toBe(String(cfg.api.retryAfterSeconds));
      expect(JSON.stringify(res.json())).not.toMatch(/ECONN|socket|127\.0\.0\.1/); // nothing internal leaks
    } finally {
      chProxy.restore();
    }
    expect((await get(url)).statusCode).toBe(200);
  });

  it('PostgreSQL down: answers 503 with Retry-After', async () => {
    // A pool that has not connected yet meets a port that refuses (pg's own handling of a connection
    // cut mid-flight leaves a rejection unhandled inside slonik: api/main.ts tolerates that one).
    pgProxy.cut();
    try {
      const res = await get('/v1/analytics/account-sharing?at=2025-05-20T12:00:00Z');
      expectProblem(res, 503, 'unavailable');
      expect(res.headers['retry-after']).toBe(String(cfg.api.retryAfterSeconds));
    } finally {
      pgProxy.restore();
    }
    expect((await get('/v1/analytics/account-sharing?at=2025-05-20T12:00:00Z')).statusCode).toBe(200);
  }, 30_000);

  it('classifies the errors of every store client, when its store is cut, as an outage', async () => {
    const base = testConfig();
    const cut = async (target: { host: string; port: number }) => {
      const p = await outageProxy(target);
      proxies.push(p);
      p.cut();
      return p;
    };
    const errorOf = async (call: () => Promise<unknown>) => {
      try {
        await call();
      } catch (err) {
        return err;
      }
      throw new Error('the call to a cut store succeeded');
    };
    const os = await cut({ host: base.opensearch.host, port: base.opensearch.port });
    const minio = await cut({ host: base.minio.endPoint, port: base.minio.port });
    const kafka = await cut({ host: base.kafka.host, port: base.kafka.port });
    const temporalProxy = await cut({ host: base.temporal.host, port: base.temporal.port });
    const chCut = await cut({ host: base.clickhouse.host, port: base.clickhouse.httpPort });
    const pgCut = await outageProxy({ host: base.postgres.host, port: base.postgres.port });
    await pgCut.close(); // refused: see the PostgreSQL test above

    const osClient = createOpenSearch({ ...base.opensearch, url: `http://${os.address}` });
    const minioClient = createMinio({ ...base.minio, endPoint: '127.0.0.1', port: minio.port });
    const producer = createKafka({ ...base.kafka, brokers: [kafka.address] }, 'api-outage-test').producer({
      retry: { retries: 0 },
    });
    const temporalConnection = Connection.lazy({ address: temporalProxy.address });
    const chClient = createClickHouse({ ...base.clickhouse, url: `http://${chCut.address}` });
    const errors: Record<string, unknown> = {
      opensearch: await errorOf(() => osClient.cluster.health()),
      minio: await errorOf(() => minioClient.bucketExists('anything')),
      kafka: await errorOf(() => producer.connect()),
      temporal: await errorOf(() =>
        temporalConnection.withDeadline(Date.now() + 2000, () =>
          new Client({ connection: temporalConnection, namespace: base.temporal.namespace }).workflow
            .getHandle('x')
            .describe(),
        ),
      ),
      clickhouse: await errorOf(() => chClient.query({ query: 'SELECT 1' })),
      postgres: await errorOf(async () => {
        const pgPool = await createPostgresPool({ ...base.postgres, port: pgCut.port }, 1);
        await pgPool.oneFirst(sql.unsafe`SELECT 1`).finally(() => pgPool.end());
      }),
    };
    await Promise.allSettled([osClient.close(), chClient.close(), temporalConnection.close()]);
    const classified = Object.fromEntries(Object.entries(errors).map(([k, e]) => [k, isStoreOutage(e)]));
    expect(classified).toEqual({
      opensearch: true,
      minio: true,
      kafka: true,
      temporal: true,
      clickhouse: true,
      postgres: true,
    });
    // A bug of ours is not an outage.
    expect(isStoreOutage(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBe(false);
    expect(isStoreOutage(Object.assign(new Error('syntax error'), { code: '42601' }))).toBe(false);
  }, 60_000);
});
