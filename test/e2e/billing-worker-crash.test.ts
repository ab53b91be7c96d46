import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Client, Connection } from '@temporalio/client';
import { sql } from 'slonik';
import { z } from 'zod';
import { PlanCatalog } from '../../domain/billing/plans';
import type { PlanTerms } from '../../domain/billing/terms';
import { createPaymentProvider } from '../../lib/clients/payments';
import type { Config } from '../../lib/config';
import { subscriptionWorkflowId } from '../../workflows/billing/contract';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';
import { billingStack, type BillingStack } from '../helpers/billing-stack';
import { testConfig } from '../helpers/env';

/**
 * kill -9 of the billing worker (its own process, as in production) during a cancel that refunds a charge
 * made while the cancel arrived: the new worker finishes the work, and the provider holds exactly one
 * charge and one refund, as do the books.
 */
const root = path.join(__dirname, '..', '..');
const plan: PlanTerms = {
  plan: 'e2e-crash',
  priceMinor: 500,
  currency: 'EUR',
  period: { ms: 60_000 },
  trialMs: 0,
  graceMs: 30_000,
  dunningMs: [10_000],
};

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('billing worker killed with -9 during a cancel with refund', () => {
  let stack: BillingStack;
  let app: FastifyInstance;
  let connection: Connection;
  let client: Client;
  let tmp: string;
  let cfg: Config;
  let worker: ChildProcess | undefined;
  const began = new Date();

  beforeAll(async () => {
    stack = await billingStack(testConfig());
    tmp = mkdtempSync(path.join(tmpdir(), 'cadenza-billing-crash-'));
    writeFileSync(path.join(tmp, 'plans.json'), JSON.stringify({ plans: [plan] }));
    // One bundle for every start of the worker, so a restart takes seconds.
    execFileSync(path.join(root, 'node_modules', '.bin', 'tsx'), [
      path.join(root, 'scripts', 'build-workflows.ts'),
      path.join(tmp, 'bundle.js'),
    ]);
    cfg = withTempIssuer(stack.config);
    connection = await Connection.connect({ address: cfg.temporal.address });
    client = new Client({ connection, namespace: cfg.temporal.namespace });
    app = await testApp(cfg, {
      temporal: client,
      pool: stack.pool,
      payments: { provider: createPaymentProvider(cfg.payments), plans: new PlanCatalog([plan]) },
    });
  }, 120_000);

  afterAll(async () => {
    if (worker?.pid) process.kill(-worker.pid, 'SIGKILL');
    for await (const w of client.workflow.list({
      query: `ExecutionStatus = 'Running' AND StartTime >= '${began.toISOString()}'`,
    }))
      await client.workflow
        .getHandle(w.workflowId)
        .terminate('test over')
        .catch(() => undefined);
    await app?.close();
    await connection?.close();
    await stack?.drop();
    rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  /** The worker as its own process group (tsx wraps node; -9 must reach both). */
  async function startWorker(): Promise<void> {
    worker = spawn(path.join(root, 'node_modules', '.bin', 'tsx'), [path.join(root, 'workers', 'main.ts')], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...process.env,
        CADENZA_TEMPORAL_NAMESPACE: cfg.temporal.namespace,
        CADENZA_WORKER_TASK_QUEUES: 'billing',
        CADENZA_PG_DATABASE: cfg.postgres.database,
        CADENZA_PAYMENTS_SANDBOX_URL: stack.sandboxUrl,
        CADENZA_BILLING_PLANS_FILE: path.join(tmp, 'plans.json'),
        CADENZA_WORKER_BUNDLE: path.join(tmp, 'bundle.js'),
        CADENZA_WORKER_STICKY_TIMEOUT: '1s',
        CADENZA_WORKER_HEALTH_PORT: '3921',
        CADENZA_WORKER_METRICS_PORT: '9921',
        CADENZA_LOG_LEVEL: 'error',
      },
    });
    await until('worker health', async () =>
      (await fetch('http://127.0.0.1:3921/healthz')).ok ? true : undefined,
    );
  }

  function killWorker(): void {
    if (worker?.pid) process.kill(-worker.pid, 'SIGKILL');
    worker = undefined;
  }

  /** Waits for an activity of the run to be running on the (soon dead) worker. */
  const activityRunning = (workflowId: string, type: string) =>
    until(`${type} in flight`, async () => {
      const d = await client.workflow.getHandle(workflowId).describe();
      return d.raw.pendingActivities?.some((a) => a.activityType?.name === type && a.lastStartedTime)
        ? true
        : undefined;
    });

  it('ends with exactly one charge and one refund, at the provider and in the books', async () => {
    const userId = await stack.pool.oneFirst(sql.type(z.object({ user_id: z.string() }))`
      INSERT INTO users (email, display_name, country) VALUES (${`crash-${randomUUID()}@example.test`}, 'C', 'DE')
      RETURNING user_id`);
    const token = await tokenFor(cfg, userId, ['listener']);
    const call = (method: 'GET' | 'POST', url: string, payload?: object) =>
      app.inject({ method, url, payload, headers: bearer(token) });
    const pm = (await call('POST', '/v1/payment-methods', { testMethod: 'test_ok' })).json()
      .paymentMethodId as string;
    await startWorker();

    // A slow provider: the first charge outlives its first attempt (5 s) and is in flight as an activity.
    await stack.sandbox.updateSettings({ latencyMs: 8000 });
    const { subscriptionId } = (
      await call('POST', '/v1/subscriptions', { plan: plan.plan, paymentMethodId: pm })
    ).json();
    const workflowId = subscriptionWorkflowId(subscriptionId);
    await activityRunning(workflowId, 'chargeSubscription');
    const cancel = await call('POST', `/v1/subscriptions/${subscriptionId}/cancel`, { atPeriodEnd: false });
    expect(cancel.statusCode).toBe(200);
    expect(cancel.json()).toMatchObject({ status: 'canceled', paymentInFlight: true });
    killWorker(); // during the charge
    await startWorker();
    await activityRunning(workflowId, 'refundPayment');
    killWorker(); // during the refund
    await startWorker();

    const done = await until(
      'the refund recorded',
      async () => {
        const topics = await stack.pool.anyFirst(sql.type(z.object({ topic: z.string() }))`
        SELECT topic FROM outbox_messages WHERE payload->>'subscriptionId' = ${subscriptionId} ORDER BY message_id`);
        return topics.includes('subscription.refunded') ? topics : undefined;
      },
      120_000,
    );
    expect(done).toEqual(['subscription.canceled', 'subscription.refunded']);
    await stack.sandbox.updateSettings({ latencyMs: 0 });

    const charges = await stack.sandbox.charges({ subscriptionId });
    expect(charges).toEqual([
      expect.objectContaining({ status: 'succeeded', amount: 500, amount_refunded: 500 }),
    ]);
    const refunds = (await (
      await fetch(`${stack.sandboxUrl}/v1/refunds?charge=${charges[0]?.id}`)
    ).json()) as {
      data: unknown[];
    };
    expect(refunds.data).toHaveLength(1);
    const books = await stack.pool.any(sql.type(z.object({ kind: z.string(), amount: z.string() }))`
      SELECT kind, amount::text AS amount FROM payment_transactions WHERE subscription_id = ${subscriptionId}
      ORDER BY kind`);
    expect(books).toEqual([
      { kind: 'charge', amount: '5.00' },
      { kind: 'refund', amount: '5.00' },
    ]);
    expect(
      await stack.pool.oneFirst(
        sql.type(z.object({ tier: z.string() }))`SELECT tier FROM users WHERE user_id = ${userId}`,
      ),
    ).toBe('free');
  }, 240_000);
});
