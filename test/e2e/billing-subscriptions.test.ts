import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { sql } from 'slonik';
import { z } from 'zod';
import { createActivities } from '../../activities';
import { PlanCatalog } from '../../domain/billing/plans';
import type { PlanTerms } from '../../domain/billing/terms';
import type { Config } from '../../lib/config';
import { createPaymentProvider } from '../../lib/clients/payments';
import { subscriptionWorkflowId } from '../../workflows/billing/contract';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';
import { billingStack, type BillingStack } from '../helpers/billing-stack';
import { temporalCli, testConfig, workflowBundle, workflowSinks } from '../helpers/env';

/**
 * Subscriptions through the API with a payments sandbox of this code, PostgreSQL and the Temporal dev
 * server. Plans of seconds (configuration, like the demo plan of minutes) make whole lifecycles fit in a
 * test. Every audited request is checked for exactly one audit_log entry.
 */
const quick = (plan: string, priceMinor: number, over: Partial<PlanTerms> = {}): PlanTerms => ({
  plan,
  priceMinor,
  currency: 'EUR',
  period: { ms: 8000 },
  trialMs: 0,
  graceMs: 6000,
  dunningMs: [2000, 4000],
  ...over,
});

describe('subscriptions end to end (API → workflow → sandbox provider → PostgreSQL)', () => {
  let stack: BillingStack;
  let cfg: Config;
  let app: FastifyInstance;
  let connection: Connection;
  let worker: Worker;
  let running: Promise<void>;
  let client: Client;
  const began = new Date();

  beforeAll(async () => {
    stack = await billingStack(testConfig(), { hangMs: 20_000 });
    cfg = withTempIssuer(stack.config);
    // The sandbox's test_timeout method holds its answer 20 s: a charge's first attempt gives up at 5 s.
    const billing = {
      pool: stack.pool,
      provider: createPaymentProvider(cfg.payments),
      plans: new PlanCatalog([
        quick('e2e-basic', 500),
        quick('e2e-plus', 900),
        quick('e2e-trial', 700, { trialMs: 4000, maxTrialMs: 10_000 }),
      ]),
    };
    connection = await Connection.connect({ address: cfg.temporal.address });
    client = new Client({ connection, namespace: cfg.temporal.namespace });
    app = await testApp(cfg, {
      temporal: client,
      pool: stack.pool,
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
  }, 90_000);

  afterAll(async () => {
    // Nothing this file started keeps running in the namespace.
    for await (const w of client.workflow.list({
      query: `ExecutionStatus = 'Running' AND StartTime >= '${began.toISOString()}'`,
    }))
      await client.workflow
        .getHandle(w.workflowId)
        .terminate('test over')
        .catch(() => undefined);
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running;
    await app?.close();
    await connection?.close();
    await stack?.drop();
  }, 60_000);

  const pool = () => stack.pool;

  async function person(scopes: ('listener' | 'service' | 'operator')[] = ['listener']) {
    const userId = await pool().oneFirst(sql.type(z.object({ user_id: z.string() }))`
      INSERT INTO users (email, display_name, country)
      VALUES (${`e2e-${randomUUID()}@example.test`}, 'E2E Listener', 'DE') RETURNING user_id`);
    const token = await tokenFor(cfg, userId, scopes);
    const call = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: object, headers = {}) =>
      app.inject({ method, url, payload, headers: { ...bearer(token), ...headers } });
    const method = async (testMethod: string) => {
      const res = await call('POST', '/v1/payment-methods', { testMethod });
      expect(res.statusCode).toBe(201);
      return res.json().paymentMethodId as string;
    };
    const tier = () =>
      pool().oneFirst(
        sql.type(z.object({ tier: z.string() }))`SELECT tier FROM users WHERE user_id = ${userId}`,
      );
    return { userId, call, method, tier, token };
  }
  type Caller = Awaited<ReturnType<typeof person>>;

  const operator = async () => {
    const token = await tokenFor(cfg, `ops-${randomUUID()}`, ['operator']);
    return (method: 'GET' | 'POST', url: string, payload?: object) =>
      app.inject({ method, url, payload, headers: bearer(token) });
  };

  /** The audit entries one request wrote (by its request ID): audited routes write exactly one. */
  const auditOf = async (res: { headers: Record<string, unknown> }) =>
    pool().anyFirst(sql.type(z.object({ action: z.string() }))`
      SELECT action FROM audit_log WHERE request_id = ${res.headers['x-request-id'] as string}`);

  async function eventually<T>(read: () => Promise<T>, want: T, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    let got = await read();
    while (got !== want && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      got = await read();
    }
    expect(got).toBe(want);
  }

  async function until(who: Caller, id: string, done: (s: Record<string, unknown>) => boolean, ms = 40_000) {
    const deadline = Date.now() + ms;
    let last: Record<string, unknown> = {};
    while (Date.now() < deadline) {
      const res = await who.call('GET', `/v1/subscriptions/${id}`);
      if (res.statusCode === 200) {
        last = res.json();
        if (done(last)) return last;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`subscription ${id} never got there; last seen ${JSON.stringify(last)}`);
  }

  const topics = (id: string) =>
    pool().anyFirst(sql.type(z.object({ topic: z.string() }))`
      SELECT topic FROM outbox_messages WHERE payload->>'subscriptionId' = ${id} ORDER BY message_id`);

  /** The provider's successful charges and refunds of a subscription against the books: they must agree. */
  async function booksAgree(subscriptionId: string) {
    const atProvider = (await stack.sandbox.charges({ subscriptionId })).filter(
      (c) => c.status === 'succeeded',
    );
    const recorded = await pool().any(sql.type(
      z.object({ kind: z.string(), amount: z.string(), ref: z.string() }),
    )`
      SELECT kind, amount::text AS amount, provider_reference AS ref FROM payment_transactions
      WHERE subscription_id = ${subscriptionId} AND status = 'succeeded' ORDER BY created_at`);
    const charges = recorded.filter((r) => r.kind === 'charge');
    expect(charges.map((c) => c.ref).sort()).toEqual(atProvider.map((c) => c.id).sort());
    const refunded = atProvider.reduce((sum, c) => sum + c.amount_refunded, 0);
    const refundsRecorded = recorded
      .filter((r) => r.kind === 'refund')
      .reduce((sum, r) => sum + Math.round(Number(r.amount) * 100), 0);
    expect(refundsRecorded).toBe(refunded);
    return { charges: atProvider.length, refundedMinor: refunded };
  }

  it('subscribes, renews, upgrades and cancels — one charge per period, each request audited once; keys bound to their request', async () => {
    const me = await person();
    const pm = await me.method('test_ok');
    const key = { 'idempotency-key': `sub-${randomUUID()}` };
    const body = { plan: 'e2e-basic', paymentMethodId: pm, trialDays: 0 };
    const res = await me.call('POST', '/v1/subscriptions', body, key);
    expect(res.statusCode).toBe(202);
    expect(await auditOf(res)).toEqual(['subscription.create']);
    const { subscriptionId } = res.json();
    const again = await me.call('POST', '/v1/subscriptions', body, key);
    expect(again.json()).toMatchObject({ subscriptionId, existing: true });
    // The same key with another request is refused, and does not touch the first.
    const other = await me.call('POST', '/v1/subscriptions', { ...body, plan: 'e2e-plus' }, key);
    expect(other.statusCode).toBe(422);
    expect(other.json().type).toBe('urn:cadenza:problem:idempotency-key-reused');
    expect(await auditOf(other)).toEqual([]);

    await until(me, subscriptionId, (s) => s.status === 'active' && s.periodIndex === 1);
    await eventually(me.tier, 'premium');
    await until(me, subscriptionId, (s) => s.periodIndex === 2);

    const up = await me.call('POST', `/v1/subscriptions/${subscriptionId}/plan`, { plan: 'e2e-plus' });
    expect(up.statusCode).toBe(200);
    expect(await auditOf(up)).toEqual(['subscription.change_plan']);
    expect(up.json()).toMatchObject({
      plan: 'e2e-plus',
      effective: 'now',
      subscription: { plan: 'e2e-plus', priceMinor: 900 },
    });
    expect(up.json().prorationMinor).toBeGreaterThan(0);
    expect(up.json().prorationMinor).toBeLessThanOrEqual(400);

    const card = await me.call('PUT', `/v1/subscriptions/${subscriptionId}/payment-method`, {
      paymentMethodId: await me.method('test_ok'),
    });
    expect(card.statusCode).toBe(200);
    expect(await auditOf(card)).toEqual(['subscription.change_payment_method']);
    const cancel = await me.call('POST', `/v1/subscriptions/${subscriptionId}/cancel`, { atPeriodEnd: true });
    expect(cancel.json()).toMatchObject({ cancelAtPeriodEnd: true, nextChargeAt: null });
    expect(await auditOf(cancel)).toEqual(['subscription.cancel']);
    await until(me, subscriptionId, (s) => s.status === 'canceled');
    await eventually(me.tier, 'free');

    const charges = (await stack.sandbox.charges({ subscriptionId })).filter((c) => c.status === 'succeeded');
    expect(charges.map((c) => [c.metadata.period, c.amount]).sort()).toEqual([
      ['1', 500],
      ['2', 500],
      ['2/upgrade', up.json().prorationMinor],
    ]);
    expect((await stack.sandbox.summary({ subscriptionId })).duplicates).toBe(0);
    await booksAgree(subscriptionId);
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
    expect(await auditOf(late)).toEqual([]);
  }, 90_000);

  it('declines into grace, recovers on a new method, then expires after a hard decline and loses premium', async () => {
    const me = await person();
    const { subscriptionId } = (
      await me.call('POST', '/v1/subscriptions', {
        plan: 'e2e-basic',
        paymentMethodId: await me.method('test_ok'),
        trialDays: 0,
      })
    ).json();
    await until(me, subscriptionId, (s) => s.status === 'active');
    const broke = await me.method('test_insufficient_funds');
    await me.call('PUT', `/v1/subscriptions/${subscriptionId}/payment-method`, { paymentMethodId: broke });
    const grace = await until(me, subscriptionId, (s) => s.status === 'past_due');
    expect(grace).toMatchObject({ lastDeclineCode: 'insufficient_funds', periodIndex: 1, entitled: true });
    expect(grace.graceUntil).not.toBeNull();
    await eventually(me.tier, 'premium'); // access kept in grace after a paid period
    await me.call('PUT', `/v1/subscriptions/${subscriptionId}/payment-method`, {
      paymentMethodId: await me.method('test_ok'),
    });
    await until(me, subscriptionId, (s) => s.status === 'active' && s.periodIndex === 2);
    await me.call('PUT', `/v1/subscriptions/${subscriptionId}/payment-method`, {
      paymentMethodId: await me.method('test_expired_card'),
    });
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
    const period3 = (await stack.sandbox.charges({ subscriptionId })).filter(
      (c) => c.metadata.period === '3',
    );
    expect(period3).toHaveLength(1); // a hard decline is not retried on dunning days
    await booksAgree(subscriptionId);
  }, 90_000);

  it('retries a provider timeout with the same idempotency key and charges once', async () => {
    const me = await person();
    const pm = await me.method('test_timeout');
    const { subscriptionId } = (
      await me.call('POST', '/v1/subscriptions', { plan: 'e2e-basic', paymentMethodId: pm, trialDays: 0 })
    ).json();
    await until(me, subscriptionId, (s) => s.status === 'active');
    const charges = await stack.sandbox.charges({ subscriptionId });
    expect(charges).toHaveLength(1);
    expect(charges[0]).toMatchObject({ status: 'succeeded', idempotency_key: `sub:${subscriptionId}:p1:a0` });
    // The first attempt (in the workflow task) timed out; the same key, retried as an activity, got the
    // provider's first answer.
    const history = await client.workflow.getHandle(subscriptionWorkflowId(subscriptionId)).fetchHistory();
    const retried = (history.events ?? []).filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'chargeSubscription',
    );
    expect(retried).toHaveLength(1);
    await booksAgree(subscriptionId);
    await me.call('POST', `/v1/subscriptions/${subscriptionId}/cancel`, { atPeriodEnd: false });
  }, 60_000);

  it('keeps listeners to their own subscriptions, their trial to the plan, and one live subscription each', async () => {
    const owner = await person();
    const other = await person();
    const pm = await owner.method('test_ok');
    // A listener may not choose a trial; a service may grant one within the plan's bound only.
    const chosen = await owner.call('POST', '/v1/subscriptions', {
      plan: 'e2e-trial',
      paymentMethodId: pm,
      trialDays: 30,
    });
    expect(chosen.statusCode).toBe(403);
    const service = await tokenFor(cfg, 'svc-web', ['service']);
    const tooLong = await app.inject({
      method: 'POST',
      url: '/v1/subscriptions',
      headers: bearer(service),
      payload: { plan: 'e2e-trial', paymentMethodId: pm, trialDays: 1, userId: owner.userId },
    });
    expect(tooLong.statusCode).toBe(400); // the plan grants at most 10 s
    const first = await owner.call('POST', '/v1/subscriptions', { plan: 'e2e-trial', paymentMethodId: pm });
    expect(first.statusCode).toBe(202);
    const { subscriptionId } = first.json();
    await until(owner, subscriptionId, (s) => s.status === 'trialing');
    const second = await owner.call('POST', '/v1/subscriptions', {
      plan: 'e2e-basic',
      paymentMethodId: pm,
      trialDays: 0,
    });
    expect(second.statusCode).toBe(409);
    expect(second.json()).toMatchObject({
      type: 'urn:cadenza:problem:subscription-exists',
      existing: { subscriptionId, url: `/v1/subscriptions/${subscriptionId}` },
    });
    expect((await other.call('GET', `/v1/subscriptions/${subscriptionId}`)).statusCode).toBe(404);
    expect(
      (await other.call('POST', `/v1/subscriptions/${subscriptionId}/cancel`, { atPeriodEnd: false }))
        .statusCode,
    ).toBe(404);
    const theirs = await other.call('POST', '/v1/subscriptions', { plan: 'e2e-basic', paymentMethodId: pm });
    expect(theirs.statusCode).toBe(400);
    expect((await owner.call('GET', `/v1/subscriptions/${randomUUID()}`)).statusCode).toBe(404);
    // Canceled, the trial stays used: a new one is refused, paying at once is not.
    await owner.call('POST', `/v1/subscriptions/${subscriptionId}/cancel`, { atPeriodEnd: false });
    await until(owner, subscriptionId, (s) => s.status === 'canceled');
    const retrial = await owner.call('POST', '/v1/subscriptions', { plan: 'e2e-trial', paymentMethodId: pm });
    expect(retrial.statusCode).toBe(409);
    expect(retrial.json().type).toBe('urn:cadenza:problem:trial-used');
    const paying = await owner.call('POST', '/v1/subscriptions', {
      plan: 'e2e-trial',
      paymentMethodId: pm,
      trialDays: 0,
    });
    expect(paying.statusCode).toBe(202);
    await until(owner, paying.json().subscriptionId, (s) => s.status === 'active');
    const list = await owner.call('GET', '/v1/subscriptions');
    expect(list.json().subscriptions.map((s: { subscriptionId: string }) => s.subscriptionId)).toEqual(
      expect.arrayContaining([subscriptionId, paying.json().subscriptionId]),
    );
    await owner.call('POST', `/v1/subscriptions/${paying.json().subscriptionId}/cancel`, {
      atPeriodEnd: false,
    });
  }, 60_000);

  describe('an operator cancel (API, CLI) is a business cancel in every state', () => {
    it('during a trial and while active: ended, premium gone, the books agree with the provider, audited once', async () => {
      const ops = await operator();
      const trial = await person();
      const t = (
        await trial.call('POST', '/v1/subscriptions', {
          plan: 'e2e-trial',
          paymentMethodId: await trial.method('test_ok'),
        })
      ).json();
      await until(trial, t.subscriptionId, (s) => s.status === 'trialing');
      await eventually(trial.tier, 'premium');
      const res = await ops('POST', `/v1/workflows/${subscriptionWorkflowId(t.subscriptionId)}/cancel`);
      expect(res.statusCode).toBe(202);
      expect(res.json().status).toBe('canceled');
      expect(await auditOf(res)).toEqual(['workflow.cancel']);
      const ended = await until(trial, t.subscriptionId, (s) => s.status === 'canceled');
      expect(ended.endedReason).toMatch(/by an operator/);
      await eventually(trial.tier, 'free');
      expect(await booksAgree(t.subscriptionId)).toEqual({ charges: 0, refundedMinor: 0 });
      expect(
        (await ops('POST', `/v1/workflows/${subscriptionWorkflowId(t.subscriptionId)}/cancel`)).statusCode,
      ).toBe(409);

      const paid = await person();
      const a = (
        await paid.call('POST', '/v1/subscriptions', {
          plan: 'e2e-basic',
          paymentMethodId: await paid.method('test_ok'),
          trialDays: 0,
        })
      ).json();
      await until(paid, a.subscriptionId, (s) => s.status === 'active');
      // From the CLI, as an operator in a shell would: the run turns it into the same business cancel.
      execFileSync(temporalCli(), [
        'workflow',
        'cancel',
        '--address',
        cfg.temporal.address,
        '--namespace',
        cfg.temporal.namespace,
        '--workflow-id',
        subscriptionWorkflowId(a.subscriptionId),
      ]);
      await until(paid, a.subscriptionId, (s) => s.status === 'canceled');
      await eventually(paid.tier, 'free');
      expect(await booksAgree(a.subscriptionId)).toEqual({ charges: 1, refundedMinor: 0 });
      expect(
        (await client.workflow.getHandle(subscriptionWorkflowId(a.subscriptionId)).describe()).status.name,
      ).toBe('CANCELLED');
    }, 90_000);

    it('in grace: dunning stops; during an in-flight charge: it is recorded and refunded in full', async () => {
      const ops = await operator();
      const owing = await person();
      const g = (
        await owing.call('POST', '/v1/subscriptions', {
          plan: 'e2e-basic',
          paymentMethodId: await owing.method('test_ok'),
          trialDays: 0,
        })
      ).json();
      await until(owing, g.subscriptionId, (s) => s.status === 'active');
      await owing.call('PUT', `/v1/subscriptions/${g.subscriptionId}/payment-method`, {
        paymentMethodId: await owing.method('test_insufficient_funds'),
      });
      await until(owing, g.subscriptionId, (s) => s.status === 'past_due');
      expect(
        (await ops('POST', `/v1/workflows/${subscriptionWorkflowId(g.subscriptionId)}/cancel`)).json().status,
      ).toBe('canceled');
      await until(owing, g.subscriptionId, (s) => s.status === 'canceled');
      const attempts = (await stack.sandbox.charges({ subscriptionId: g.subscriptionId })).length;
      await new Promise((r) => setTimeout(r, 5000)); // past two dunning days
      expect(await stack.sandbox.charges({ subscriptionId: g.subscriptionId })).toHaveLength(attempts);
      await eventually(owing.tier, 'free');
      await booksAgree(g.subscriptionId);

      // A slow provider keeps the first charge in flight past its first attempt; the cancel arrives then.
      const slow = await person();
      const pm = await slow.method('test_ok');
      await stack.sandbox.updateSettings({ latencyMs: 7000 });
      try {
        const f = (
          await slow.call('POST', '/v1/subscriptions', {
            plan: 'e2e-basic',
            paymentMethodId: pm,
            trialDays: 0,
          })
        ).json();
        await until(slow, f.subscriptionId, (s) => s.status === 'pending', 10_000);
        await new Promise((r) => setTimeout(r, 6000)); // the first attempt gave up at 5 s; the retry is in flight
        const res = await ops('POST', `/v1/workflows/${subscriptionWorkflowId(f.subscriptionId)}/cancel`);
        expect(res.json().status).toBe('canceled');
        const ended = await until(slow, f.subscriptionId, (s) => s.status === 'canceled', 5000);
        expect(ended.endedReason).toMatch(/while a payment was being made/);
        // The charge completes, is recorded, and is refunded once with its own key.
        await eventually(
          async () => (await topics(f.subscriptionId)).join(),
          'subscription.canceled,subscription.refunded',
          40_000,
        );
        expect(await booksAgree(f.subscriptionId)).toEqual({ charges: 1, refundedMinor: 500 });
        await eventually(slow.tier, 'free');
      } finally {
        await stack.sandbox.updateSettings({ latencyMs: 0 });
      }
    }, 120_000);
  });

  it('answers reads from PostgreSQL with the worker stopped', async () => {
    const me = await person();
    const { subscriptionId } = (
      await me.call('POST', '/v1/subscriptions', {
        plan: 'e2e-basic',
        paymentMethodId: await me.method('test_ok'),
        trialDays: 0,
      })
    ).json();
    const seen = await until(me, subscriptionId, (s) => s.status === 'active');
    worker.shutdown();
    await running;
    const byId = await me.call('GET', `/v1/subscriptions/${subscriptionId}`);
    expect(byId.statusCode).toBe(200);
    expect(byId.json()).toEqual(seen);
    const list = await me.call('GET', '/v1/subscriptions');
    expect(list.statusCode).toBe(200);
    expect(list.json().subscriptions).toEqual([seen]);
  }, 60_000);
});
