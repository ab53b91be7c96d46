import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { createBillingActivities, type SubscriptionChange } from '../../activities/billing/subscriptions';
import { BUILT_IN_PLANS, PlanCatalog } from '../../domain/billing/plans';
import { createPostgresPool } from '../../lib/clients/postgres';
import { migratePostgres } from '../../sql/migrate/postgres';
import { createPaymentProvider } from '../../lib/clients/payments';
import { scratchDatabases } from '../../stack/scratch';
import { testConfig } from '../helpers/env';

/** The billing activities against real PostgreSQL and the real sandbox provider. */
describe('billing activities', () => {
  let db: Awaited<ReturnType<typeof scratchDatabases>>;
  let pool: DatabasePool;
  let activities: ReturnType<typeof createBillingActivities>;
  const env = new MockActivityEnvironment();
  const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> =>
    env.run(fn, ...args) as Promise<R>;
  const terms = BUILT_IN_PLANS[0] as (typeof BUILT_IN_PLANS)[number];

  beforeAll(async () => {
    db = await scratchDatabases(testConfig());
    await migratePostgres(db.config.postgres);
    pool = await createPostgresPool(db.config.postgres, 2);
    activities = createBillingActivities({
      pool,
      provider: createPaymentProvider(db.config.payments),
      plans: new PlanCatalog(BUILT_IN_PLANS),
    });
  }, 60_000);
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  async function user() {
    const userId = await pool.oneFirst(sql.type(z.object({ user_id: z.string() }))`
      INSERT INTO users (email, display_name, country) VALUES (${`${randomUUID()}@example.test`}, 'T', 'SE')
      RETURNING user_id`);
    const token = (await createPaymentProvider(db.config.payments).tokenizeTestMethod('test_ok')).token;
    const paymentMethodId = await pool.oneFirst(sql.type(z.object({ payment_method_id: z.string() }))`
      INSERT INTO payment_methods (user_id, provider, provider_token) VALUES (${userId}, 'sandbox', ${token})
      RETURNING payment_method_id`);
    return { userId, paymentMethodId };
  }

  const change = (
    u: { userId: string; paymentMethodId: string },
    over: Partial<SubscriptionChange> = {},
  ): SubscriptionChange => ({
    subscriptionId: randomUUID(),
    userId: u.userId,
    version: 1,
    fromStatus: null,
    status: 'active',
    reason: 'period 1 paid',
    terms,
    pendingPlan: null,
    periodIndex: 1,
    periodStart: Date.parse('2026-01-31T00:00:00Z'),
    periodEnd: Date.parse('2026-02-28T00:00:00Z'),
    graceUntil: null,
    cancelAtPeriodEnd: false,
    paymentMethodId: u.paymentMethodId,
    charge: {
      idempotencyKey: `sub:${randomUUID()}:p1:a0`,
      amountMinor: 1099,
      result: { outcome: 'succeeded', reference: 'ch_test' },
    },
    message: { topic: 'subscription.started', data: { period: 1 } },
    ...over,
  });

  const counts = (id: string) =>
    pool.one(sql.type(z.object({ history: z.number(), tx: z.number(), outbox: z.number() }))`
      SELECT (SELECT count(*)::int FROM subscription_history WHERE subscription_id = ${id}) AS history,
             (SELECT count(*)::int FROM payment_transactions WHERE subscription_id = ${id}) AS tx,
             (SELECT count(*)::int FROM outbox_messages WHERE payload->>'subscriptionId' = ${id}) AS outbox`);

  it('writes a change once however often it runs, and the tier follows the live subscriptions', async () => {
    const u = await user();
    const c = change(u);
    await run(activities.recordSubscriptionChange, c);
    await run(activities.recordSubscriptionChange, c);
    expect(await counts(c.subscriptionId)).toEqual({ history: 1, tx: 1, outbox: 1 });
    const row = await pool.one(sql.unsafe`
      SELECT status, price::text, price_minor::int, currency, state_version::int FROM subscriptions WHERE subscription_id = ${c.subscriptionId}`);
    expect(row).toEqual({
      status: 'active',
      price: '10.99',
      price_minor: 1099,
      currency: 'EUR',
      state_version: 1,
    });
    expect(await pool.oneFirst(sql.unsafe`SELECT tier FROM users WHERE user_id = ${u.userId}`)).toBe(
      'premium',
    );

    // A retried older change never overwrites a newer one.
    const expired = {
      ...c,
      version: 2,
      fromStatus: 'active' as const,
      status: 'expired' as const,
      reason: 'x',
      charge: undefined,
    };
    await run(activities.recordSubscriptionChange, expired);
    await run(activities.recordSubscriptionChange, c);
    expect(
      await pool.oneFirst(
        sql.unsafe`SELECT status FROM subscriptions WHERE subscription_id = ${c.subscriptionId}`,
      ),
    ).toBe('expired');
    expect(await pool.oneFirst(sql.unsafe`SELECT tier FROM users WHERE user_id = ${u.userId}`)).toBe('free');
    expect(await counts(c.subscriptionId)).toEqual({ history: 2, tx: 1, outbox: 2 });
  });

  it('keeps a user premium while another of their subscriptions is live', async () => {
    const u = await user();
    const tier = () => pool.oneFirst(sql.unsafe`SELECT tier FROM users WHERE user_id = ${u.userId}`);
    const a = change(u);
    const b = change(u, { charge: undefined, message: undefined, status: 'trialing' });
    await run(activities.recordSubscriptionChange, a);
    await run(activities.recordSubscriptionChange, b);
    const end = (c: SubscriptionChange) => ({
      ...c,
      version: 2,
      fromStatus: c.status,
      status: 'canceled' as const,
      reason: 'canceled immediately',
      charge: undefined,
    });
    await run(activities.recordSubscriptionChange, end(a));
    expect(await tier()).toBe('premium');
    await run(activities.recordSubscriptionChange, end(b));
    expect(await tier()).toBe('free');
    expect(await counts(b.subscriptionId)).toEqual({ history: 2, tx: 0, outbox: 0 });
  });

  it('writes nothing when any part fails (one transaction)', async () => {
    const u = await user();
    const c = change(u, { message: { topic: 'Not A Topic', data: {} } }); // refused by the outbox check
    await expect(run(activities.recordSubscriptionChange, c)).rejects.toThrow();
    expect(await counts(c.subscriptionId)).toEqual({ history: 0, tx: 0, outbox: 0 });
    expect(
      await pool.exists(sql.unsafe`SELECT 1 FROM subscriptions WHERE subscription_id = ${c.subscriptionId}`),
    ).toBe(false);
    expect(
      await pool.exists(
        sql.unsafe`SELECT 1 FROM payment_idempotency_keys WHERE idempotency_key = ${c.charge?.idempotencyKey ?? ''}`,
      ),
    ).toBe(false);
  });

  it('refuses an unknown user and an unknown plan with a reason a person can act on, not retried', async () => {
    const u = await user();
    const stranger = change({ ...u, userId: randomUUID() });
    await expect(run(activities.recordSubscriptionChange, stranger)).rejects.toMatchObject({
      nonRetryable: true,
      message: expect.stringMatching(/does not exist/),
    });
    expect(await counts(stranger.subscriptionId)).toEqual({ history: 0, tx: 0, outbox: 0 });
    await expect(run(activities.quotePlan, 'gold')).rejects.toMatchObject({
      nonRetryable: true,
      type: 'UnknownPlan',
    });
  });

  it('charges through the provider, and a detached method is a hard decline', async () => {
    const u = await user();
    const input = {
      subscriptionId: randomUUID(),
      userId: u.userId,
      paymentMethodId: u.paymentMethodId,
      amountMinor: 1099,
      currency: 'EUR',
      period: 1,
      idempotencyKey: `sub:${randomUUID()}:p1:a0`,
    };
    const first = await run(activities.chargeSubscription, input);
    expect(first.outcome).toBe('succeeded');
    expect(await run(activities.chargeSubscription, input)).toEqual(first); // same key, same answer
    await pool.query(
      sql.unsafe`UPDATE payment_methods SET status = 'detached' WHERE payment_method_id = ${u.paymentMethodId}`,
    );
    expect(
      await run(activities.chargeSubscription, { ...input, idempotencyKey: `${input.idempotencyKey}x` }),
    ).toMatchObject({
      outcome: 'declined',
      code: 'payment_method_missing',
      retry: 'hard',
    });
  });

  it('charges and writes the paid period together; run again, it charges once and writes once', async () => {
    const u = await user();
    const { charge: _unused, ...paid } = change(u);
    const charge = {
      subscriptionId: paid.subscriptionId,
      userId: u.userId,
      paymentMethodId: u.paymentMethodId,
      amountMinor: 1099,
      currency: 'EUR',
      period: 1,
      idempotencyKey: `sub:${paid.subscriptionId}:p1:a0`,
    };
    const first = await run(activities.chargeAndRecordIfPaid, { charge, ifPaid: paid });
    expect(first.outcome).toBe('succeeded');
    // A retry (or a worker that died before answering) repeats both steps: nothing happens twice.
    expect(await run(activities.chargeAndRecordIfPaid, { charge, ifPaid: paid })).toEqual(first);
    expect(await counts(paid.subscriptionId)).toEqual({ history: 1, tx: 1, outbox: 1 });
    const tx = await pool.one(sql.type(z.object({ status: z.string(), provider_reference: z.string() }))`
      SELECT status, provider_reference FROM payment_transactions WHERE subscription_id = ${paid.subscriptionId}`);
    expect(tx).toEqual({ status: 'succeeded', provider_reference: first.reference });

    // A declined charge writes nothing: the workflow decides and writes the grace itself.
    await pool.query(
      sql.unsafe`UPDATE payment_methods SET status = 'detached' WHERE payment_method_id = ${u.paymentMethodId}`,
    );
    const other = { ...paid, subscriptionId: randomUUID() };
    const declined = await run(activities.chargeAndRecordIfPaid, {
      charge: {
        ...charge,
        subscriptionId: other.subscriptionId,
        idempotencyKey: `sub:${other.subscriptionId}:p1:a0`,
      },
      ifPaid: other,
    });
    expect(declined).toMatchObject({ outcome: 'declined', code: 'payment_method_missing' });
    expect(await counts(other.subscriptionId)).toEqual({ history: 0, tx: 0, outbox: 0 });
  });
});
