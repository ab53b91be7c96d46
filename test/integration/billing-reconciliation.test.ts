import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { NativeConnection, Worker } from '@temporalio/worker';
import { Registry } from 'prom-client';
import { sql } from 'slonik';
import { z } from 'zod';
import { createActivities } from '../../activities';
import { createBillingActivities, type SubscriptionChange } from '../../activities/billing/subscriptions';
import { BUILT_IN_PLANS, PlanCatalog } from '../../domain/billing/plans';
import type { PlanTerms } from '../../domain/billing/terms';
import { SandboxProvider } from '../../lib/clients/payments-sandbox';
import { billingReconciliation, subscription } from '../../workflows';
import { reconciliationWorkflowId, subscriptionWorkflowId } from '../../workflows/billing/contract';
import { billingStack, type BillingStack } from '../helpers/billing-stack';
import { testConfig, workflowBundle, workflowSinks } from '../helpers/env';

/**
 * Billing activities and reconciliation against real PostgreSQL, a payments sandbox of this code, and the
 * Temporal dev server: user policies decided under a lock, keys looked up after the provider forgot them,
 * refunds once, and a reconciliation that writes what is missing, refunds orphans, closes rows whose run
 * was terminated, adopts rows without a run — once, audited, counted.
 */
const catalog = new PlanCatalog(BUILT_IN_PLANS);
const individual = catalog.get('premium-individual') as PlanTerms;
const DAY = 86_400_000;

describe('billing activities and reconciliation (real stores)', () => {
  let stack: BillingStack;
  let provider: SandboxProvider;
  let activities: ReturnType<typeof createBillingActivities>;
  let connection: Connection;
  let client: Client;
  let worker: Worker;
  let running: Promise<void>;
  const metrics = new Registry();
  const env = new MockActivityEnvironment();
  const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> =>
    env.run(fn, ...args) as Promise<R>;

  beforeAll(async () => {
    stack = await billingStack(testConfig(), { keyLifetimeMs: 1500 });
    provider = new SandboxProvider({ url: stack.sandboxUrl, timeoutMs: 5000 });
    activities = createBillingActivities({ pool: stack.pool, provider, plans: catalog, keyLifetimeMs: 1500 });
    const cfg = stack.config;
    connection = await Connection.connect({ address: cfg.temporal.address });
    client = new Client({ connection, namespace: cfg.temporal.namespace });
    worker = await Worker.create({
      connection: await NativeConnection.connect({ address: cfg.temporal.address }),
      namespace: cfg.temporal.namespace,
      taskQueue: 'billing',
      workflowBundle: await workflowBundle(),
      sinks: workflowSinks(),
      activities: createActivities({
        billing: {
          pool: stack.pool,
          provider,
          plans: catalog,
          reconciliation: {
            temporal: client,
            policy: { orphanCharges: 'refund', settleMs: 0, adoptTemplate: 'premium-individual' },
            metrics,
          },
        },
      }),
    });
    running = worker.run();
  }, 90_000);

  afterAll(async () => {
    worker?.shutdown();
    await running;
    await connection?.close();
    await stack?.drop();
  });

  async function user(testMethod: 'test_ok' | 'test_insufficient_funds' = 'test_ok') {
    const userId = await stack.pool.oneFirst(sql.type(z.object({ user_id: z.string() }))`
      INSERT INTO users (email, display_name, country) VALUES (${`${randomUUID()}@example.test`}, 'T', 'SE')
      RETURNING user_id`);
    const { token } = await provider.tokenizeTestMethod(testMethod);
    const paymentMethodId = await stack.pool.oneFirst(sql.type(z.object({ payment_method_id: z.string() }))`
      INSERT INTO payment_methods (user_id, provider, provider_token) VALUES (${userId}, 'sandbox', ${token})
      RETURNING payment_method_id`);
    return { userId, paymentMethodId, token };
  }
  type User = Awaited<ReturnType<typeof user>>;

  const change = (u: User, over: Partial<SubscriptionChange> = {}): SubscriptionChange => ({
    subscriptionId: randomUUID(),
    userId: u.userId,
    version: 1,
    fromStatus: null,
    status: 'active',
    reason: 'period 1 paid',
    terms: individual,
    pendingPlan: null,
    periodIndex: 1,
    periodStart: Date.now() - 10 * DAY,
    periodEnd: Date.now() + 20 * DAY,
    graceUntil: null,
    cancelAtPeriodEnd: false,
    paymentMethodId: u.paymentMethodId,
    ...over,
  });
  const tier = (userId: string) =>
    stack.pool.oneFirst(
      sql.type(z.object({ tier: z.string() }))`SELECT tier FROM users WHERE user_id = ${userId}`,
    );
  const row = (id: string) =>
    stack.pool.one(
      sql.type(
        z.object({
          status: z.string(),
          entitled: z.boolean(),
          state_version: z.number(),
          ended_reason: z.string().nullable(),
        }),
      )`SELECT status, entitled, state_version, ended_reason FROM subscriptions WHERE subscription_id = ${id}`,
    );

  it('decides one live subscription and one trial per family under a lock, even when asked at once', async () => {
    const u = await user();
    const opening = (trial: boolean) =>
      change(u, {
        status: trial ? 'trialing' : 'pending',
        periodIndex: 0,
        reason: 'opening',
        entitled: trial,
      });
    const [a, b] = [opening(true), opening(true)];
    const answers = await Promise.all([
      run(activities.openSubscription, { opening: a, trial: true, exclusive: true }),
      run(activities.openSubscription, { opening: b, trial: true, exclusive: true }),
    ]);
    expect(answers.filter((x) => x.opened)).toHaveLength(1);
    const refused = answers.find((x) => !x.opened);
    expect(refused).toMatchObject({
      opened: false,
      reason: expect.stringMatching(/already has live subscription/),
    });
    // Run again, the first answer stands.
    const again = await run(activities.openSubscription, {
      opening: answers[0]?.opened ? a : b,
      trial: true,
      exclusive: true,
    });
    expect(again).toEqual({ opened: true });
    const loser = answers[0]?.opened ? b : a;
    expect(await row(loser.subscriptionId)).toMatchObject({ status: 'canceled', entitled: false });
    // An add-on stacks; the trial of the family stays used after the live one ends.
    const addon = { ...opening(false), terms: { ...individual, plan: 'audiobooks-addon', exclusive: false } };
    expect(
      await run(activities.openSubscription, { opening: addon, trial: false, exclusive: false }),
    ).toEqual({ opened: true });
    const winner = answers[0]?.opened ? a : b;
    await run(activities.recordSubscriptionChange, {
      ...winner,
      version: 2,
      status: 'canceled',
      entitled: false,
      reason: 'x',
    });
    const duo = { ...opening(true), terms: catalog.get('premium-duo') as PlanTerms };
    expect(
      await run(activities.openSubscription, { opening: duo, trial: true, exclusive: true }),
    ).toMatchObject({
      opened: false,
      reason: expect.stringMatching(/had a premium trial/),
    });
    await run(activities.recordSubscriptionChange, {
      ...addon,
      version: 2,
      status: 'canceled',
      entitled: false,
    });
  });

  it('looks a charge up at the provider once its key may be forgotten, and refunds once', async () => {
    const u = await user();
    const subscriptionId = randomUUID();
    const input = {
      subscriptionId,
      userId: u.userId,
      paymentMethodId: u.paymentMethodId,
      amountMinor: 1099,
      currency: 'EUR',
      period: 1,
      idempotencyKey: `sub:${subscriptionId}:p1:a0`,
    };
    const first = await run(activities.chargeSubscription, { ...input, firstUseAt: Date.now() });
    await new Promise((r) => setTimeout(r, 1700)); // past the sandbox's 1.5 s key lifetime
    const found = await run(activities.chargeSubscription, { ...input, firstUseAt: Date.now() - 2000 });
    expect(found).toEqual(first);
    expect((await stack.sandbox.summary({ subscriptionId })).succeeded).toBe(1);
    // Without the lookup the forgotten key charges again: what the lookup is for.
    await run(activities.chargeSubscription, { ...input, firstUseAt: Date.now() });
    expect((await stack.sandbox.summary({ subscriptionId })).duplicates).toBe(1);

    const refund = {
      subscriptionId,
      idempotencyKey: `refund:${input.idempotencyKey}`,
      chargeReference: (first as { reference: string }).reference,
      amountMinor: 1099,
    };
    const refunded = await run(activities.refundPayment, refund);
    expect(await run(activities.refundPayment, refund)).toEqual(refunded);
    expect(refunded).toMatchObject({ refunded: true, amountMinor: 1099 });
    // A second refund under another key finds nothing left: a result, not a failure.
    expect(
      await run(activities.refundPayment, { ...refund, idempotencyKey: `refund:x-${randomUUID()}` }),
    ).toMatchObject({
      refunded: false,
      reason: expect.stringMatching(/amount_too_large/),
    });
  });

  it('writes money per currency, skips free charges, keeps premium off an unpaid trial end', async () => {
    const u = await user();
    const yen = change(u, {
      terms: { ...individual, plan: 'premium-monthly', currency: 'JPY', priceMinor: 980 },
      charge: {
        idempotencyKey: `k-${randomUUID()}`,
        amountMinor: 980,
        result: { outcome: 'succeeded', reference: 'ch_y' },
      },
    });
    await run(activities.recordSubscriptionChange, yen);
    expect(
      await stack.pool.one(sql.unsafe`
        SELECT s.price::text AS price, t.amount::text AS amount FROM subscriptions s
        JOIN payment_transactions t USING (subscription_id) WHERE s.subscription_id = ${yen.subscriptionId}`),
    ).toEqual({ price: '980.00', amount: '980.00' });
    const free = change(u, {
      terms: { ...individual, plan: 'free-tier', priceMinor: 0 },
      charge: {
        idempotencyKey: `k-${randomUUID()}`,
        amountMinor: 0,
        result: { outcome: 'succeeded', reference: 'free' },
      },
    });
    await run(activities.recordSubscriptionChange, free);
    expect(
      await stack.pool.oneFirst(
        sql.unsafe`SELECT count(*)::int FROM payment_transactions WHERE subscription_id = ${free.subscriptionId}`,
      ),
    ).toBe(0);
    for (const id of [yen.subscriptionId, free.subscriptionId])
      await run(activities.recordSubscriptionChange, {
        ...change(u),
        subscriptionId: id,
        version: 9,
        status: 'canceled',
        entitled: false,
      });
    const trial = change(u, { status: 'past_due', entitled: false, periodIndex: 0 });
    await run(activities.recordSubscriptionChange, trial);
    expect(await tier(u.userId)).toBe('free');
    await run(activities.recordSubscriptionChange, {
      ...trial,
      version: 2,
      status: 'active',
      entitled: true,
    });
    expect(await tier(u.userId)).toBe('premium');
    // Ended, so that reconciliation below has only its own rows to adopt.
    await run(activities.recordSubscriptionChange, {
      ...trial,
      version: 3,
      status: 'canceled',
      entitled: false,
    });
  });

  it('reconciles: writes lost records, refunds orphans, closes terminated runs, adopts rows without one — once', async () => {
    // The provider lists by the second: earlier tests' records stay before this window.
    await new Promise((r) => setTimeout(r, 1100));
    const since = Date.now();
    const ended = (c: SubscriptionChange) =>
      run(activities.recordSubscriptionChange, {
        ...c,
        version: 50,
        status: 'canceled',
        entitled: false,
        charge: undefined,
      });
    // (a) The row shows period 1 paid; the provider has the charge; the books lost it.
    const a = await user();
    const lost = change(a);
    await run(activities.recordSubscriptionChange, lost);
    const lostCharge = await provider.charge({
      idempotencyKey: `sub:${lost.subscriptionId}:p1:a0`,
      token: a.token,
      amountMinor: 1099,
      currency: 'EUR',
      metadata: { subscription_id: lost.subscriptionId, period: '1' },
    });
    // (b) An orphan: a charge for period 2 the row never reached (its run was terminated mid-charge).
    const orphanCharge = await provider.charge({
      idempotencyKey: `sub:${lost.subscriptionId}:p2:a0`,
      token: a.token,
      amountMinor: 1099,
      currency: 'EUR',
      metadata: { subscription_id: lost.subscriptionId, period: '2' },
    });
    // (c) A refund at the provider the books lack.
    const c = await user();
    const refundedSub = change(c, {
      charge: {
        idempotencyKey: `sub:x:p1:a0-${randomUUID()}`,
        amountMinor: 1099,
        result: { outcome: 'succeeded', reference: 'pending' },
      },
    });
    const paid = await provider.charge({
      idempotencyKey: refundedSub.charge?.idempotencyKey as string,
      token: c.token,
      amountMinor: 1099,
      currency: 'EUR',
      metadata: { subscription_id: refundedSub.subscriptionId, period: '1' },
    });
    await run(activities.recordSubscriptionChange, {
      ...refundedSub,
      charge: { ...(refundedSub.charge as NonNullable<SubscriptionChange['charge']>), result: paid },
    });
    const providerRefund = await provider.refund({
      idempotencyKey: `manual-refund-${randomUUID()}`,
      chargeReference: (paid as { reference: string }).reference,
      amountMinor: 500,
    });
    // (d) The books claim a charge the provider never made.
    const d = await user();
    const phantom = change(d, {
      charge: {
        idempotencyKey: `k-${randomUUID()}`,
        amountMinor: 1099,
        result: { outcome: 'succeeded', reference: `ch_phantom_${randomUUID()}` },
      },
    });
    await run(activities.recordSubscriptionChange, phantom);
    // Their rows have ended (only the payments are in question).
    for (const c of [lost, refundedSub, phantom]) await ended(c);
    // (e) A live row with no workflow (from before workflows): adopted. (f) A row whose run was terminated.
    const e = await user();
    const seeded = change(e, {
      version: 0,
      periodIndex: 0,
      periodStart: Date.now() - 5 * DAY,
      periodEnd: Date.now() + 25 * DAY,
    });
    await stack.pool.query(sql.unsafe`
      INSERT INTO subscriptions (subscription_id, user_id, plan, status, country, currency, price,
        current_period_start, current_period_end, payment_method_id)
      VALUES (${seeded.subscriptionId}, ${e.userId}, 'premium-monthly', 'active', 'SE', 'SEK', 129.00,
        ${new Date(seeded.periodStart).toISOString()}, ${new Date(seeded.periodEnd).toISOString()}, ${e.paymentMethodId})`);
    await stack.pool.query(sql.unsafe`UPDATE users SET tier = 'premium' WHERE user_id = ${e.userId}`);
    const f = await user();
    const terminatedId = randomUUID();
    const terminated = await client.workflow.start(subscription, {
      taskQueue: 'billing',
      workflowId: subscriptionWorkflowId(terminatedId),
      args: [
        {
          start: {
            subscriptionId: terminatedId,
            userId: f.userId,
            plan: 'premium-individual',
            paymentMethodId: f.paymentMethodId,
            terms: individual,
          },
        },
      ],
    });
    // Terminated: no code of it runs again; its row stays trialing and premium.
    await terminated.terminate('an operator terminated it');
    await run(
      activities.recordSubscriptionChange,
      change(f, {
        subscriptionId: terminatedId,
        version: 10,
        status: 'trialing',
        periodIndex: 0,
        entitled: true,
      }),
    );

    const reconcile = async (key: string) =>
      client.workflow.execute(billingReconciliation, {
        taskQueue: 'billing',
        workflowId: reconciliationWorkflowId(key),
        args: [{ lookbackMs: Date.now() - since }],
      });
    const first = await reconcile(`t-${randomUUID()}`);
    expect(first.mismatches).toMatchObject({
      'charge_unrecorded:recorded': 1,
      'charge_orphan:refunded': 1,
      'refund_unrecorded:recorded': 1,
      'charge_unknown_to_provider:flagged': 1,
      'frozen_row:adopted': 1,
      'frozen_row:closed': 1,
    });
    // (a) recorded; (b) refunded in full at the provider, both rows in the books.
    const books = await stack.pool.any(sql.type(
      z.object({ kind: z.string(), provider_reference: z.string(), amount: z.string() }),
    )`
      SELECT kind, provider_reference, amount::text AS amount FROM payment_transactions
      WHERE subscription_id = ${lost.subscriptionId} ORDER BY kind, provider_reference`);
    expect(
      books
        .filter((b) => b.kind === 'charge')
        .map((b) => b.provider_reference)
        .sort(),
    ).toEqual(
      [
        (lostCharge as { reference: string }).reference,
        (orphanCharge as { reference: string }).reference,
      ].sort(),
    );
    expect(books.filter((b) => b.kind === 'refund')).toEqual([expect.objectContaining({ amount: '10.99' })]);
    const orphanAtProvider = (await stack.sandbox.charges({ subscriptionId: lost.subscriptionId })).find(
      (ch) => ch.id === (orphanCharge as { reference: string }).reference,
    );
    expect(orphanAtProvider?.amount_refunded).toBe(1099);
    // (c) the provider's refund is in the books.
    expect(
      await stack.pool.oneFirst(sql.unsafe`
        SELECT count(*)::int FROM payment_transactions WHERE provider_reference = ${providerRefund.reference} AND kind = 'refund'`),
    ).toBe(1);
    // (e) adopted: its workflow runs and has written the row; (f) closed, premium gone.
    await new Promise((r) => setTimeout(r, 1500));
    expect(
      (await client.workflow.getHandle(subscriptionWorkflowId(seeded.subscriptionId)).describe()).status.name,
    ).toBe('RUNNING');
    expect(await row(seeded.subscriptionId)).toMatchObject({ status: 'active', state_version: 1 });
    expect(await row(terminatedId)).toMatchObject({ status: 'canceled', entitled: false });
    expect(await tier(f.userId)).toBe('free');
    // Every fix is in the audit log once, and counted.
    const audits = await stack.pool.anyFirst(sql.type(z.object({ action: z.string() }))`
      SELECT action FROM audit_log WHERE action LIKE 'billing.reconcile.%'`);
    expect(audits.length).toBe(Object.values(first.mismatches).reduce((x, y) => x + y, 0));
    expect(await metrics.getSingleMetricAsString('cadenza_billing_reconciliation_mismatches_total')).toMatch(
      /kind="charge_orphan",resolution="refunded"} 1/,
    );

    // A second run finds nothing new and moves no money.
    const second = await reconcile(`t-${randomUUID()}`);
    expect(second.mismatches).toEqual({});
    expect(
      (await stack.sandbox.charges({ subscriptionId: lost.subscriptionId })).find(
        (ch) => ch.id === (orphanCharge as { reference: string }).reference,
      )?.amount_refunded,
    ).toBe(1099);
  }, 120_000);
});
