import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { subscription } from '../../workflows';
import {
  cancelSubscription,
  changePlan,
  paymentMethodUpdated,
  subscriptionState,
  type NewSubscription,
  type SubscriptionState,
} from '../../workflows/billing/contract';
import { BUILT_IN_PLANS, PlanCatalog } from '../../domain/billing/plans';
import { days, type PlanTerms } from '../../domain/billing/terms';
import { fakeBilling, type Script } from '../helpers/billing-fakes';
import { timeSkippingEnv, workflowBundle, workflowSinks } from '../helpers/env';

const DAY = 86_400_000;
const catalogOf = (plans: PlanTerms[]) => {
  const c = new PlanCatalog(plans);
  return (name: string) => c.get(name) as PlanTerms;
};
const individual = BUILT_IN_PLANS[0] as PlanTerms;
const plans: PlanTerms[] = [
  ...BUILT_IN_PLANS,
  { ...individual, plan: 'free-tier', priceMinor: 0, trialMs: 0 },
  { ...individual, plan: 'audiobooks-addon', priceMinor: 299, trialMs: 0, exclusive: false },
];
const quote = catalogOf(plans);

/**
 * Issue 15 in time-skipping workflow tests: a cancellation of the run is a business cancel, no provider
 * answer fails a run, trial and entitlement policies hold, updates are answered while a charge is in
 * flight, catalog changes reach subscriptions at renewal.
 */
describe('subscription hardening (time-skipping, mocked billing activities)', () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  const billing = fakeBilling(plans);

  beforeAll(async () => {
    env = await timeSkippingEnv();
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: 'billing',
      workflowBundle: await workflowBundle(),
      sinks: workflowSinks(),
      activities: billing.activities,
    });
    running = worker.run();
  }, 60_000);
  afterAll(async () => {
    worker?.shutdown();
    await running;
    await env?.teardown();
  });

  async function start(over: Partial<NewSubscription> = {}, script?: Script) {
    const input: NewSubscription = {
      subscriptionId: randomUUID(),
      userId: randomUUID(),
      plan: 'premium-individual',
      paymentMethodId: `pm-${randomUUID()}`,
      trialDays: 0,
      ...over,
    };
    input.terms ??= quote(input.plan);
    if (script) billing.script(input.paymentMethodId, script);
    const handle = await env.client.workflow.start(subscription, {
      taskQueue: 'billing',
      workflowId: `subscription-${input.subscriptionId}`,
      args: [{ start: input }],
    });
    const state = () => handle.query(subscriptionState);
    const row = () => billing.row(input.subscriptionId);
    const last = () => billing.changes(input.subscriptionId).at(-1);
    return { input, handle, state, row, last, id: input.subscriptionId };
  }
  type Started = Awaited<ReturnType<typeof start>>;

  async function until(what: string, probe: () => boolean | Promise<boolean>, ms = 20_000) {
    const deadline = Date.now() + ms;
    while (!(await probe())) {
      if (Date.now() > deadline) throw new Error(`never: ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  const settled = (s: Started) => until('opened', async () => (await s.state()).status !== 'pending');
  const toDue = async (s: Started, after = 60_000) => {
    const due = Date.parse((await s.state()).periodEnd as string);
    await env.sleep(due - (await env.currentTimeMs()) + after);
  };
  const statusOf = async (s: Started) => (await s.handle.describe()).status.name;
  /** The run was canceled (Temporal status), as an operator's cancel should show. */
  const canceledRun = async (s: Started) => {
    const err = await s.handle.result().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(await statusOf(s)).toBe('CANCELLED');
  };
  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => 'accepted',
      (err: unknown) =>
        err instanceof WorkflowUpdateFailedError ? `${(err.cause as { type?: string })?.type}` : String(err),
    );

  describe('a cancellation of the run (Web UI, CLI, API) is a business cancel', () => {
    it('during a trial: recorded canceled, no premium, nothing charged, the run shows Canceled', async () => {
      const s = await start({ trialDays: undefined });
      await settled(s);
      expect(s.row()).toMatchObject({ status: 'trialing', entitled: true });
      await s.handle.cancel();
      await canceledRun(s);
      expect(s.row()).toMatchObject({ status: 'canceled', entitled: false });
      expect(s.last()).toMatchObject({
        reason: 'canceled immediately by an operator',
        message: { topic: 'subscription.canceled' },
      });
      expect(billing.charges(s.id)).toEqual([]);
    });

    it('while active: the paid period is kept, no refund, no further charge', async () => {
      const s = await start();
      await settled(s);
      await env.sleep(3 * DAY);
      await s.handle.cancel();
      await canceledRun(s);
      expect(s.row()).toMatchObject({ status: 'canceled', entitled: false, periodIndex: 1 });
      await env.sleep(40 * DAY);
      expect(billing.charges(s.id).map((c) => c.input.period)).toEqual([1]);
      expect(billing.refunds(s.id)).toEqual([]);
    });

    it('in grace: dunning stops', async () => {
      const s = await start({}, (n) => (n === 0 ? 'succeeded' : 'soft'));
      await settled(s);
      await toDue(s);
      expect(s.row()).toMatchObject({ status: 'past_due', entitled: true });
      await s.handle.cancel();
      await canceledRun(s);
      const attempts = billing.attempts(s.id).length;
      await env.sleep(10 * DAY);
      expect(billing.attempts(s.id)).toHaveLength(attempts);
      expect(s.row()).toMatchObject({ status: 'canceled', entitled: false });
    });

    it('during an in-flight renewal charge: it completes, is recorded and refunded once, then the run closes', async () => {
      const s = await start({}, (n) => (n === 0 ? 'succeeded' : 'hold'));
      await settled(s);
      await toDue(s, 0);
      await until('the renewal charge held in flight', () => billing.holding(s.id).length === 1);
      const [key] = billing.holding(s.id) as [string];
      expect((await s.state()).paymentInFlight).toBe(true); // queries answer while it is in flight
      await s.handle.cancel();
      await until('the cancel recorded', () => s.row()?.status === 'canceled');
      expect(s.row()).toMatchObject({ entitled: false, periodIndex: 1 });
      billing.release(key);
      await canceledRun(s);
      expect(billing.charges(s.id).filter((c) => c.key === key)).toHaveLength(1);
      expect(billing.refunds(s.id)).toEqual([
        expect.objectContaining({ idempotencyKey: `refund:${key}`, amountMinor: 1099 }),
      ]);
      const refunded = billing.changes(s.id).find((c) => c.refund);
      expect(refunded).toMatchObject({
        status: 'canceled',
        charge: { idempotencyKey: key, result: { outcome: 'succeeded' } },
        refund: { idempotencyKey: `refund:${key}`, refundOf: key, amountMinor: 1099 },
        message: { topic: 'subscription.refunded' },
      });
    });
  });

  describe('updates are answered at once while a charge is in flight', () => {
    it('cancel: canceled now, the charge refunded when it succeeds; a plan change: refused; a new card: recorded', async () => {
      const s = await start({}, (n) => (n === 0 ? 'succeeded' : 'hold'));
      await settled(s);
      await toDue(s, 0);
      await until('the renewal charge held in flight', () => billing.holding(s.id).length === 1);
      const [key] = billing.holding(s.id) as [string];
      expect(await refusal(s.handle.executeUpdate(changePlan, { args: [{ plan: 'premium-family' }] }))).toBe(
        'PaymentInFlight',
      );
      const card = await s.handle.executeUpdate(paymentMethodUpdated, {
        args: [{ paymentMethodId: 'pm-new' }],
      });
      expect(card).toMatchObject({ paymentMethodId: 'pm-new', paymentInFlight: true, status: 'active' });
      const canceled = await s.handle.executeUpdate(cancelSubscription, { args: [{ atPeriodEnd: true }] });
      expect(canceled).toMatchObject({ status: 'canceled', paymentInFlight: true, entitled: false });
      expect(canceled.endedReason).toMatch(/while a payment was being made/);
      billing.release(key);
      expect(await s.handle.result()).toMatchObject({ status: 'canceled' });
      expect(billing.refunds(s.id)).toHaveLength(1);
      // The held charge ran on the card it started with; nothing was charged to the new one.
      expect(billing.attempts(s.id).filter((a) => a.paymentMethodId === 'pm-new')).toEqual([]);
    });
  });

  describe('no provider answer fails a run', () => {
    it.each<[string, Script, Record<string, unknown>]>([
      ['succeeded', () => 'succeeded', { status: 'active', periodIndex: 2 }],
      [
        'a soft decline',
        (n) => (n === 0 ? 'succeeded' : 'soft'),
        { status: 'past_due', lastDeclineCode: 'insufficient_funds' },
      ],
      ['a hard decline', (n) => (n === 0 ? 'succeeded' : 'hard'), { status: 'past_due', nextChargeAt: null }],
      ['a timeout', (n) => (n === 1 ? 'timeout' : 'succeeded'), { status: 'active', periodIndex: 2 }],
      [
        'a refusal (card deleted at the provider)',
        (n) => (n === 0 ? 'succeeded' : 'refused'),
        { status: 'past_due', lastDeclineCode: 'resource_missing', nextChargeAt: null },
      ],
    ])('renewal answered with %s ends in a defined state', async (_what, script, expected) => {
      const s = await start({}, script);
      await settled(s);
      await toDue(s, 5 * 60_000);
      expect(await s.state()).toMatchObject(expected);
      expect(await statusOf(s)).toBe('RUNNING');
      await s.handle.executeUpdate(cancelSubscription, { args: [{ atPeriodEnd: false }] });
    });

    it('a refused first charge ends the subscription expired, never failed', async () => {
      const s = await start({}, () => 'refused');
      expect(await s.handle.result()).toMatchObject({
        status: 'expired',
        reason: 'initial payment declined: resource_missing',
      });
      expect(s.last()?.shown).toMatchObject({
        lastDeclineCode: 'resource_missing',
        endedReason: expect.any(String),
      });
    });

    it('a refusal in grace waits for a new card, which recovers it', async () => {
      const s = await start({}, (n) => (n === 0 ? 'succeeded' : 'refused'));
      await settled(s);
      await toDue(s);
      await s.handle.executeUpdate(paymentMethodUpdated, {
        args: [{ paymentMethodId: `pm-ok-${randomUUID()}` }],
      });
      await env.sleep(60_000);
      expect(await s.state()).toMatchObject({ status: 'active', periodIndex: 2, entitled: true });
    });

    it('a free plan never reaches the provider and renews', async () => {
      const s = await start({ plan: 'free-tier' });
      await settled(s);
      await env.sleep(65 * DAY);
      expect(await s.state()).toMatchObject({ status: 'active', periodIndex: 3 });
      expect(billing.charges(s.id)).toEqual([]);
      expect(billing.changes(s.id).every((c) => !c.charge || c.charge.amountMinor === 0)).toBe(true);
    });

    it('an unknown user is refused without failing the run', async () => {
      const userId = randomUUID();
      billing.unknownUser(userId);
      const s = await start({ userId });
      expect(await s.handle.result()).toEqual({
        subscriptionId: s.id,
        status: 'canceled',
        reason: `refused: user ${userId} does not exist`,
      });
      expect(billing.attempts(s.id)).toEqual([]);
    });
  });

  describe('trial and entitlement policy', () => {
    it('takes the trial from the plan, and holds a granted one within the plan bound', async () => {
      const own = await start({ trialDays: undefined });
      await settled(own);
      expect(
        Date.parse((await own.state()).periodEnd as string) -
          Date.parse((await own.state()).periodStart as string),
      ).toBe(days(30));
      const granted = await start({ trialDays: 400 }); // a service asked too much; the bound holds
      await settled(granted);
      const g = await granted.state();
      expect(Date.parse(g.periodEnd as string) - Date.parse(g.periodStart as string)).toBe(days(90));
    });

    it('one trial per user per plan family: a second is refused with the reason', async () => {
      const userId = randomUUID();
      const first = await start({ userId, trialDays: undefined });
      await settled(first);
      await first.handle.executeUpdate(cancelSubscription, { args: [{ atPeriodEnd: false }] });
      const again = await start({
        userId,
        plan: 'premium-duo',
        trialDays: undefined,
        terms: quote('premium-duo'),
      });
      expect(await again.handle.result()).toMatchObject({
        status: 'canceled',
        reason: expect.stringMatching(/had a premium trial/),
      });
      expect(again.row()).toMatchObject({ status: 'canceled', entitled: false });
      expect(billing.charges(again.id)).toEqual([]);
    });

    it('one live exclusive subscription per user; an add-on may stack', async () => {
      const userId = randomUUID();
      const first = await start({ userId });
      await settled(first);
      const second = await start({ userId, plan: 'premium-family' });
      expect(await second.handle.result()).toMatchObject({
        status: 'canceled',
        reason: expect.stringContaining(`live subscription ${first.id}`),
      });
      expect(billing.charges(second.id)).toEqual([]);
      const addon = await start({ userId, plan: 'audiobooks-addon' });
      await settled(addon);
      expect(await addon.state()).toMatchObject({ status: 'active' });
    });

    it('an unpaid trial end drops premium at once while dunning continues; a payment restores it', async () => {
      const s = await start({ trialDays: undefined }, (n) => (n === 0 ? 'soft' : 'succeeded'));
      await settled(s);
      await toDue(s);
      expect(await s.state()).toMatchObject({ status: 'past_due', entitled: false });
      expect(s.row()).toMatchObject({ status: 'past_due', entitled: false });
      await env.sleep(1 * DAY); // the first dunning retry pays
      expect(await s.state()).toMatchObject({ status: 'active', entitled: true, periodIndex: 1 });
    });
  });

  describe('catalog changes reach subscriptions at their next renewal', () => {
    it('a new price is announced at a renewal and charged from the one after; grace and dunning apply at once', async () => {
      const s = await start({}, (n) => (n >= 3 ? 'soft' : 'succeeded'));
      await settled(s);
      const changed = { ...individual, priceMinor: 1299, graceMs: days(3), dunningMs: [days(2)] };
      billing.setPlans(plans.map((p) => (p.plan === individual.plan ? changed : p)));
      try {
        await toDue(s); // period 2 charged at the old price, the new one announced
        expect(billing.charges(s.id).map((c) => c.input.amountMinor)).toEqual([1099, 1099]);
        const notice = billing
          .changes(s.id)
          .find((c) => c.message?.topic === 'subscription.price_change_scheduled');
        expect(notice?.message?.data).toMatchObject({
          priceMinor: 1299,
          effectiveAt: (await s.state()).periodEnd,
        });
        expect(await s.state()).toMatchObject({ priceMinor: 1099, nextChargeMinor: 1299 });
        await toDue(s); // period 3 at the new price
        expect(billing.charges(s.id).map((c) => c.input.amountMinor)).toEqual([1099, 1099, 1299]);
        const due = Date.parse((await s.state()).periodEnd as string);
        await toDue(s); // declined: the new grace (3 days) and dunning (day 2) apply
        expect(await s.state()).toMatchObject({
          status: 'past_due',
          graceUntil: new Date(due + days(3)).toISOString(),
          nextChargeAt: new Date(due + days(2)).toISOString(),
        });
      } finally {
        billing.setPlans(plans);
      }
    });
  });

  it('charges carry the time their key could first be used, for the lookup after the provider forgets keys', async () => {
    const s = await start();
    await settled(s);
    const due = Date.parse((await s.state()).periodEnd as string);
    await toDue(s);
    const renewal = billing.attempts(s.id).find((a) => a.period === 2);
    expect(renewal?.firstUseAt).toBe(due);
  });

  it('a run continued by older code (version 4) continues into this code', async () => {
    const id = randomUUID();
    const now = await env.currentTimeMs();
    const state: SubscriptionState = {
      subscriptionId: id,
      userId: randomUUID(),
      paymentMethodId: `pm-${id}`,
      terms: individual,
      pendingPlan: null,
      status: 'active',
      anchor: now - 20 * DAY,
      periodIndex: 1,
      periodStart: now - 20 * DAY,
      periodEnd: now + 10 * DAY,
      cancelAtPeriodEnd: false,
      version: 3,
      codeVersion: 4,
    };
    const handle = await env.client.workflow.start(subscription, {
      taskQueue: 'billing',
      workflowId: `subscription-${id}`,
      args: [{ state }],
    });
    await env.sleep(11 * DAY);
    expect(await handle.query(subscriptionState)).toMatchObject({
      status: 'active',
      periodIndex: 2,
      entitled: true,
    });
    const first = await env.client.workflow
      .getHandle(handle.workflowId, handle.firstExecutionRunId)
      .fetchHistory();
    const markers = (first.events ?? []).flatMap((e) =>
      e.markerRecordedEventAttributes ? [e.markerRecordedEventAttributes.markerName] : [],
    );
    expect(markers[0]).toBe('core_patch'); // subscription-code-v5, asked once
    await handle.executeUpdate(cancelSubscription, { args: [{ atPeriodEnd: false }] });
  });
});
