import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { createActivities } from '../../activities';
import { PlanCatalog } from '../../domain/billing/plans';
import type { PlanTerms } from '../../domain/billing/terms';
import { createPostgresPool } from '../../lib/clients/postgres';
import type { Config } from '../../lib/config';
import { createPaymentProvider } from '../../lib/clients/payments';
import { SandboxControl } from '../../lib/clients/payments-sandbox';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';
import { testConfig, workflowBundle, workflowSinks } from '../helpers/env';

/**
 * Subscriptions through the API with the real sandbox provider, PostgreSQL and Temporal dev server.
 * Plans of seconds (configuration, like the demo plan of minutes) make whole lifecycles fit in a test.
 */
const quick = (plan: string, priceMinor: number): PlanTerms => ({
  plan,
  priceMinor,
  currency: 'EUR',
  period: { ms: 8000 },
  trialMs: 0,
  graceMs: 6000,
  dunningMs: [2000, 4000],
});

describe('subscriptions end to end (API → workflow → sandbox provider → PostgreSQL)', () => {
  let cfg: Config;
  let app: FastifyInstance;
  let pool: DatabasePool;
  let connection: Connection;
  let worker: Worker;
  let running: Promise<void>;
  let sandbox: SandboxControl;
  let client: Client;

  beforeAll(async () => {
    cfg = withTempIssuer(testConfig());
    pool = await createPostgresPool(cfg.postgres, 4);
    sandbox = new SandboxControl(cfg.payments.sandbox.url);
    // A short client timeout so the sandbox's test_timeout method (it holds its answer) trips it.
    const billing = {
      pool,
      provider: createPaymentProvider({ ...cfg.payments, timeoutMs: 1500 }),
      plans: new PlanCatalog([quick('e2e-basic', 500), quick('e2e-plus', 900)]),
    };
    connection = await Connection.connect({ address: cfg.temporal.address });
    client = new Client({ connection, namespace: cfg.temporal.namespace });
    app = await testApp(cfg, {
      temporal: client,
      pool,
      payments: { provider: billing.provider, plans: billing.plans },
    });
    worker = await Worker.create({
      connection: await NativeConnection.connect({ address: cfg.temporal.address }),
      namespace: cfg.temporal.namespace,
      taskQueue: 'billing',
      workflowBundle: await workflowBundle(),
      sinks: workflowSinks(),
      activities: createActivities({ billing }),
    });
    running = worker.run();
  }, 60_000);

  afterAll(async () => {
    worker?.shutdown();
    await running;
    await app?.close();
    await connection?.close();
    await pool?.end();
  });

  async function listener() {
    const userId = await pool.oneFirst(sql.type(z.object({ user_id: z.string() }))`
      INSERT INTO users (email, display_name, country)
      VALUES (${`e2e-${randomUUID()}@example.test`}, 'E2E Listener', 'DE') RETURNING user_id`);
    const token = await tokenFor(cfg, userId, ['listener']);
    const call = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: object, headers = {}) =>
      app.inject({ method, url, payload, headers: { ...bearer(token), ...headers } });
    const method = async (testMethod: string) => {
      const res = await call('POST', '/v1/payment-methods', { testMethod });
      expect(res.statusCode).toBe(201);
      return res.json().paymentMethodId as string;
    };
    const tier = () =>
      pool.oneFirst(
        sql.type(z.object({ tier: z.string() }))`SELECT tier FROM users WHERE user_id = ${userId}`,
      );
    return { userId, call, method, tier };
  }

  /** Activities commit after the workflow's state moves: PostgreSQL catches up a moment later. */
  async function eventually<T>(read: () => Promise<T>, want: T, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    let got = await read();
    while (got !== want && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      got = await read();
    }
    expect(got).toBe(want);
  }

  type Caller = Awaited<ReturnType<typeof listener>>;
  async function until(who: Caller, id: string, done: (s: Record<string, unknown>) => boolean, ms = 40_000) {
    const deadline = Date.now() + ms;
    let last: Record<string, unknown> = {};
    while (Date.now() < deadline) {
      const res = await who.call('GET', `/v1/subscriptions/${id}`);
      if (res.statusCode === 200) {
        last = res.json();
        if (done(last)) return last;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`subscription ${id} never got there; last seen ${JSON.stringify(last)}`);
  }

  const topics = (id: string) =>
    pool.manyFirst(sql.type(z.object({ topic: z.string() }))`
      SELECT topic FROM outbox_messages WHERE payload->>'subscriptionId' = ${id} ORDER BY message_id`);

  it('subscribes, renews, upgrades with proration and cancels at period end — one charge per period', async () => {
    const me = await listener();
    const pm = await me.method('test_ok');
    const key = { 'idempotency-key': `sub-${randomUUID()}` };
    const res = await me.call(
      'POST',
      '/v1/subscriptions',
      { plan: 'e2e-basic', paymentMethodId: pm, trialDays: 0 },
      key,
    );
    expect(res.statusCode).toBe(202);
    const { subscriptionId } = res.json();
    const again = await me.call(
      'POST',
      '/v1/subscriptions',
      { plan: 'e2e-basic', paymentMethodId: pm, trialDays: 0 },
      key,
    );
    expect(again.json()).toMatchObject({ subscriptionId, existing: true });

    await until(me, subscriptionId, (s) => s.status === 'active' && s.periodIndex === 1);
    await eventually(me.tier, 'premium');
    await until(me, subscriptionId, (s) => s.periodIndex === 2);

    const up = await me.call('POST', `/v1/subscriptions/${subscriptionId}/plan`, { plan: 'e2e-plus' });
    expect(up.statusCode).toBe(200);
    expect(up.json()).toMatchObject({
      plan: 'e2e-plus',
      effective: 'now',
      subscription: { plan: 'e2e-plus', priceMinor: 900 },
    });
    expect(up.json().prorationMinor).toBeGreaterThan(0);
    expect(up.json().prorationMinor).toBeLessThanOrEqual(400);

    const cancel = await me.call('POST', `/v1/subscriptions/${subscriptionId}/cancel`, { atPeriodEnd: true });
    expect(cancel.json()).toMatchObject({ cancelAtPeriodEnd: true, nextChargeAt: null });
    await until(me, subscriptionId, (s) => s.status === 'canceled');
    await eventually(me.tier, 'free');

    // The provider's own records: periods 1 and 2 once each, plus the proration.
    const charges = (await sandbox.charges({ subscriptionId })).filter((c) => c.status === 'succeeded');
    expect(charges.map((c) => [c.metadata.period, c.amount]).sort()).toEqual([
      ['1', 500],
      ['2', 500],
      ['2/upgrade', up.json().prorationMinor],
    ]);
    expect((await sandbox.summary({ subscriptionId })).duplicates).toBe(0);
    const recorded = await pool.manyFirst(sql.type(z.object({ n: z.string() }))`
      SELECT amount::text AS n FROM payment_transactions WHERE subscription_id = ${subscriptionId} AND status = 'succeeded'
      ORDER BY amount`);
    expect([...recorded].sort()).toEqual(charges.map((c) => (c.amount / 100).toFixed(2)).sort());
    expect(await topics(subscriptionId)).toEqual([
      'subscription.started',
      'subscription.renewed',
      'subscription.plan_changed',
      'subscription.cancel_scheduled',
      'subscription.canceled',
    ]);
    const late = await me.call('POST', `/v1/subscriptions/${subscriptionId}/cancel`, { atPeriodEnd: false });
    expect(late.statusCode).toBe(409);
    expect(late.json().type).toBe('urn:cadenza:problem:subscription-ended');
  }, 90_000);

  it('declines into grace, recovers on a new method, then expires after a hard decline and loses premium', async () => {
    const me = await listener();
    const ok = await me.method('test_ok');
    const res = await me.call('POST', '/v1/subscriptions', {
      plan: 'e2e-basic',
      paymentMethodId: ok,
      trialDays: 0,
    });
    const { subscriptionId } = res.json();
    await until(me, subscriptionId, (s) => s.status === 'active');

    const broke = await me.method('test_insufficient_funds');
    expect(
      (await me.call('PUT', `/v1/subscriptions/${subscriptionId}/payment-method`, { paymentMethodId: broke }))
        .statusCode,
    ).toBe(200);
    const grace = await until(me, subscriptionId, (s) => s.status === 'past_due');
    expect(grace).toMatchObject({ lastDeclineCode: 'insufficient_funds', periodIndex: 1 });
    expect(grace.graceUntil).not.toBeNull();
    await eventually(me.tier, 'premium'); // access kept in grace

    const fixed = await me.method('test_ok');
    await me.call('PUT', `/v1/subscriptions/${subscriptionId}/payment-method`, { paymentMethodId: fixed });
    await until(me, subscriptionId, (s) => s.status === 'active' && s.periodIndex === 2);

    const expired = await me.method('test_expired_card');
    await me.call('PUT', `/v1/subscriptions/${subscriptionId}/payment-method`, { paymentMethodId: expired });
    const hard = await until(me, subscriptionId, (s) => s.status === 'past_due');
    expect(hard).toMatchObject({ lastDeclineCode: 'expired_card', nextChargeAt: null });
    await until(me, subscriptionId, (s) => s.status === 'expired');
    await eventually(me.tier, 'free');
    expect(await topics(subscriptionId)).toEqual(
      expect.arrayContaining([
        'subscription.payment_failed',
        'subscription.recovered',
        'subscription.expired',
      ]),
    );
    // Hard declines are not retried on dunning days: one attempt for period 3.
    const period3 = (await sandbox.charges({ subscriptionId })).filter((c) => c.metadata.period === '3');
    expect(period3).toHaveLength(1);
  }, 90_000);

  it('retries a provider timeout with the same idempotency key and charges once', async () => {
    const me = await listener();
    const pm = await me.method('test_timeout');
    const { subscriptionId } = (
      await me.call('POST', '/v1/subscriptions', { plan: 'e2e-basic', paymentMethodId: pm, trialDays: 0 })
    ).json();
    await until(me, subscriptionId, (s) => s.status === 'active');
    const charges = await sandbox.charges({ subscriptionId });
    expect(charges).toHaveLength(1);
    expect(charges[0]).toMatchObject({ status: 'succeeded', idempotency_key: `sub:${subscriptionId}:p1:a0` });
    // The activity timed out once and its retry got the provider's first answer.
    const history = await client.workflow.getHandle(`subscription-${subscriptionId}`).fetchHistory();
    // The first charge runs as one local activity with its write: its marker records the attempt that
    // answered.
    const attempts = (history.events ?? []).flatMap((e) => {
      const data = e.markerRecordedEventAttributes?.details?.data?.payloads?.[0]?.data;
      if (!data) return [];
      const marker = JSON.parse(Buffer.from(data).toString('utf8')) as {
        activity_type?: string;
        attempt?: number;
      };
      return marker.activity_type === 'chargeAndRecordIfPaid' ? [marker.attempt ?? 0] : [];
    });
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toBeGreaterThanOrEqual(2);
    await me.call('POST', `/v1/subscriptions/${subscriptionId}/cancel`, { atPeriodEnd: false });
  }, 60_000);

  it('keeps listeners to their own subscriptions and payment methods', async () => {
    const owner = await listener();
    const other = await listener();
    const pm = await owner.method('test_ok');
    const { subscriptionId } = (
      await owner.call('POST', '/v1/subscriptions', { plan: 'e2e-basic', paymentMethodId: pm, trialDays: 0 })
    ).json();
    await until(owner, subscriptionId, (s) => s.status === 'active');
    expect((await other.call('GET', `/v1/subscriptions/${subscriptionId}`)).statusCode).toBe(404);
    expect(
      (await other.call('POST', `/v1/subscriptions/${subscriptionId}/cancel`, { atPeriodEnd: false }))
        .statusCode,
    ).toBe(404);
    const theirs = await other.call('POST', '/v1/subscriptions', { plan: 'e2e-basic', paymentMethodId: pm });
    expect(theirs.statusCode).toBe(400);
    expect((await owner.call('GET', `/v1/subscriptions/${randomUUID()}`)).statusCode).toBe(404);
    await owner.call('POST', `/v1/subscriptions/${subscriptionId}/cancel`, { atPeriodEnd: false });
  }, 60_000);
});
