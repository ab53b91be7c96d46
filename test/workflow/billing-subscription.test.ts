import { randomUUID } from 'node:crypto';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { subscription } from '../../workflows';
import {
  cancelSubscription,
  changePlan,
  paymentMethodUpdated,
  subscriptionState,
  type NewSubscription,
} from '../../workflows/billing/contract';
import { addSpan } from '../../domain/billing/terms';
import { fakeBilling } from '../helpers/billing-fakes';
import { timeSkippingEnv, workflowBundle, workflowSinks } from '../helpers/env';

const DAY = 86_400_000;

/** The subscription workflow's business rules, with months of timers skipped in seconds. */
describe('subscription workflow (time-skipping, mocked billing activities)', () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  const billing = fakeBilling();

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

  async function start(over: Partial<NewSubscription> = {}) {
    const input: NewSubscription = {
      subscriptionId: randomUUID(),
      userId: randomUUID(),
      plan: 'premium-individual',
      paymentMethodId: `pm-ok-${randomUUID()}`,
      trialDays: 0,
      ...over,
    };
    const handle = await env.client.workflow.start(subscription, {
      taskQueue: 'billing',
      workflowId: `subscription-${input.subscriptionId}`,
      args: [{ start: input }],
    });
    const state = () => handle.query(subscriptionState);
    // The first activities (quote, trial or first charge) run before the state is known.
    while ((await state()).status === 'pending') await new Promise((r) => setTimeout(r, 20));
    return { input, handle, state };
  }

  const periods = (id: string) =>
    billing
      .charges(id)
      .filter((c) => c.result.outcome === 'succeeded')
      .map((c) => c.input.period);

  it('renews monthly for a year, one charge per period, continuing as new each period', async () => {
    const { input, handle, state } = await start();
    await env.sleep(366 * DAY);
    const s = await state();
    expect(s).toMatchObject({ status: 'active', plan: 'premium-individual', periodIndex: 13 });
    expect(periods(input.subscriptionId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(billing.charges(input.subscriptionId).every((c) => c.input.amountMinor === 1099)).toBe(true);
    // Calendar months from the anchor: each period ends on the same day-of-month (or the month's last).
    const anchor = billing.changes(input.subscriptionId)[0]?.periodStart as number;
    expect(s.periodStart).toBe(new Date(addSpan(anchor, { months: 1 }, 12)).toISOString());
    const versions = billing.changes(input.subscriptionId).map((c) => c.version);
    expect(versions).toEqual(versions.map((_, i) => i + 1));
    const { runId } = await handle.describe();
    expect(runId).not.toBe(handle.firstExecutionRunId);
  });

  it('a paid renewal is one local activity: charge and write together, no patch marker', async () => {
    const { input, handle } = await start();
    await env.sleep(63 * DAY); // the first run pays periods 1 and 2, the second run period 3
    const { runId } = await handle.describe();
    const history = await env.client.workflow.getHandle(handle.workflowId, runId).fetchHistory();
    const kinds = (history.events ?? []).map((e) => String(e.eventType));
    // The renewing run was continued by the current code: it carries its version and needs no patches.
    const second = await env.client.workflow
      .getHandle(
        handle.workflowId,
        (history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId ??
          undefined) as string,
      )
      .fetchHistory();
    const secondKinds = (second.events ?? []).map((e) => String(e.eventType));
    for (const k of [kinds, secondKinds]) {
      expect(k.filter((e) => /UPSERT_WORKFLOW_SEARCH_ATTRIBUTES|ACTIVITY_TASK_SCHEDULED/.test(e))).toEqual(
        [],
      );
    }
    const markers = (second.events ?? []).filter((e) => e.markerRecordedEventAttributes);
    expect(markers.map((m) => m.markerRecordedEventAttributes?.markerName)).toEqual(['core_local_activity']);
    const paid = billing
      .changes(input.subscriptionId)
      .filter((c) => c.charge?.result.outcome === 'succeeded');
    expect(paid.map((c) => [c.periodIndex, c.reason])).toEqual([
      [1, 'period 1 paid'],
      [2, 'period 2 paid'],
      [3, 'period 3 paid'],
    ]);
  });

  it('charges after the trial, not before', async () => {
    const { input, state } = await start({ trialDays: undefined });
    expect((await state()).status).toBe('trialing');
    await env.sleep(29 * DAY);
    expect(periods(input.subscriptionId)).toEqual([]);
    await env.sleep(2 * DAY);
    expect(periods(input.subscriptionId)).toEqual([1]);
    expect(await state()).toMatchObject({ status: 'active', periodIndex: 1 });
  });

  it('imports a subscriber paid through a date: active until then, first charge at that instant', async () => {
    const paidThrough = new Date((await env.currentTimeMs()) + 10 * DAY).toISOString();
    const { input, state } = await start({ paidThrough });
    expect(await state()).toMatchObject({
      status: 'active',
      periodIndex: 0,
      periodEnd: paidThrough,
      nextChargeAt: paidThrough,
    });
    await env.sleep(9 * DAY);
    expect(periods(input.subscriptionId)).toEqual([]);
    await env.sleep(2 * DAY);
    expect(periods(input.subscriptionId)).toEqual([1]);
    expect((await state()).periodStart).toBe(paidThrough);
  });

  it('soft decline → grace with dunning → recovered on a dunning retry', async () => {
    const pm = `pm-soft-twice-${randomUUID()}`;
    billing.script(pm, (n) => (n === 1 || n === 2 ? 'soft' : 'succeeded'));
    const { input, state } = await start({ paymentMethodId: pm });
    const due = Date.parse((await state()).periodEnd as string);
    await env.sleep(due - (await env.currentTimeMs()) + 60_000);
    const grace = await state();
    expect(grace).toMatchObject({ status: 'past_due', lastDeclineCode: 'insufficient_funds' });
    expect(grace.graceUntil).toBe(new Date(due + 7 * DAY).toISOString());
    expect(grace.nextChargeAt).toBe(new Date(due + 1 * DAY).toISOString());
    await env.sleep(1 * DAY); // day 1: declined again
    expect((await state()).nextChargeAt).toBe(new Date(due + 3 * DAY).toISOString());
    await env.sleep(2 * DAY); // day 3: paid
    expect(await state()).toMatchObject({ status: 'active', periodIndex: 2, graceUntil: null });
    // The recovered period keeps the billing anchor: it started at the original due date.
    expect((await state()).periodStart).toBe(new Date(due).toISOString());
    expect(billing.charges(input.subscriptionId).map((c) => [c.input.period, c.result.outcome])).toEqual([
      [1, 'succeeded'],
      [2, 'declined'],
      [2, 'declined'],
      [2, 'succeeded'],
    ]);
    const recovered = billing.changes(input.subscriptionId).at(-1);
    expect(recovered).toMatchObject({
      fromStatus: 'past_due',
      status: 'active',
      reason: 'payment recovered',
    });
  });

  it('soft decline → new payment method → retried at once → recovered', async () => {
    const pm = `pm-soft-${randomUUID()}`;
    billing.script(pm, (n) => (n === 0 ? 'succeeded' : 'soft'));
    const { input, handle, state } = await start({ paymentMethodId: pm });
    const due = Date.parse((await state()).periodEnd as string);
    await env.sleep(due - (await env.currentTimeMs()) + 60_000);
    expect((await state()).status).toBe('past_due');
    const view = await handle.executeUpdate(paymentMethodUpdated, {
      args: [{ paymentMethodId: 'pm-new-ok' }],
    });
    expect(view.paymentMethodId).toBe('pm-new-ok');
    await env.sleep(60_000); // well before the first dunning day
    expect(await state()).toMatchObject({ status: 'active', periodIndex: 2, paymentMethodId: 'pm-new-ok' });
    const last = billing.charges(input.subscriptionId).at(-1);
    expect(last?.input).toMatchObject({ paymentMethodId: 'pm-new-ok', period: 2 });
  });

  it('grace runs out → expired after every dunning retry failed', async () => {
    const pm = `pm-broke-${randomUUID()}`;
    billing.script(pm, (n) => (n === 0 ? 'succeeded' : 'soft'));
    const { input, handle } = await start({ paymentMethodId: pm });
    const result = await handle.result();
    expect(result).toEqual({
      subscriptionId: input.subscriptionId,
      status: 'expired',
      reason: 'grace period ended without payment',
    });
    const declines = billing.charges(input.subscriptionId).filter((c) => c.result.outcome === 'declined');
    expect(declines.map((c) => c.input.idempotencyKey.split(':').at(-1))).toEqual([
      'a0',
      'a1',
      'a2',
      'a3',
      'a4',
    ]);
    const last = billing.changes(input.subscriptionId).at(-1);
    expect(last).toMatchObject({ fromStatus: 'past_due', status: 'expired', graceUntil: null });
    expect(last?.message?.topic).toBe('subscription.expired');
  });

  it('hard decline → no scheduled retries; a new method is retried at once', async () => {
    const pm = `pm-expired-${randomUUID()}`;
    billing.script(pm, (n) => (n === 0 ? 'succeeded' : 'hard'));
    const { input, handle, state } = await start({ paymentMethodId: pm });
    const due = Date.parse((await state()).periodEnd as string);
    await env.sleep(due - (await env.currentTimeMs()) + 6 * DAY);
    expect(await state()).toMatchObject({
      status: 'past_due',
      lastDeclineCode: 'expired_card',
      nextChargeAt: null,
    });
    expect(billing.attempts(input.subscriptionId).filter((a) => a.period === 2)).toHaveLength(1);
    await handle.executeUpdate(paymentMethodUpdated, { args: [{ paymentMethodId: 'pm-fixed' }] });
    await env.sleep(60_000);
    expect(await state()).toMatchObject({ status: 'active', periodIndex: 2 });
  });

  it('hard decline with no new method expires at the end of grace', async () => {
    const pm = `pm-dnh-${randomUUID()}`;
    billing.script(pm, (n) => (n === 0 ? 'succeeded' : 'hard'));
    const { input, handle } = await start({ paymentMethodId: pm });
    expect((await handle.result()).status).toBe('expired');
    expect(billing.attempts(input.subscriptionId).filter((a) => a.period === 2)).toHaveLength(1);
  });

  it('cancel at period end keeps the paid period, then ends without charging', async () => {
    const { input, handle } = await start();
    const view = await handle.executeUpdate(cancelSubscription, { args: [{ atPeriodEnd: true }] });
    expect(view).toMatchObject({ status: 'active', cancelAtPeriodEnd: true, nextChargeAt: null });
    expect(await handle.result()).toMatchObject({ status: 'canceled', reason: 'canceled at period end' });
    expect(periods(input.subscriptionId)).toEqual([1]);
  });

  it('cancel now ends at once; later updates are refused with the reason', async () => {
    const { handle } = await start();
    const view = await handle.executeUpdate(cancelSubscription, { args: [{ atPeriodEnd: false }] });
    expect(view.status).toBe('canceled');
    expect(await handle.result()).toMatchObject({ status: 'canceled', reason: 'canceled immediately' });
  });

  it('upgrades now with a prorated charge; downgrades at the next period', async () => {
    const { input, handle, state } = await start();
    const s0 = await state();
    const [from, to] = [Date.parse(s0.periodStart as string), Date.parse(s0.periodEnd as string)];
    await env.sleep(Math.floor((to - from) / 2));
    const up = await handle.executeUpdate(changePlan, { args: [{ plan: 'premium-family' }] });
    expect(up).toMatchObject({ plan: 'premium-family', effective: 'now' });
    // (1799 − 1099) × remaining/period, rounded half up: about half of 700.
    expect(up.prorationMinor).toBeGreaterThanOrEqual(349);
    expect(up.prorationMinor).toBeLessThanOrEqual(351);
    const proration = billing.charges(input.subscriptionId).at(-1);
    expect(proration?.input).toMatchObject({ amountMinor: up.prorationMinor, period: 1 });
    expect(up.subscription).toMatchObject({ plan: 'premium-family', priceMinor: 1799 });

    const down = await handle.executeUpdate(changePlan, { args: [{ plan: 'premium-student' }] });
    expect(down).toMatchObject({ effective: 'next_period', effectiveAt: s0.periodEnd, prorationMinor: 0 });
    expect(await state()).toMatchObject({
      plan: 'premium-family',
      pendingPlan: 'premium-student',
      nextChargeMinor: 599,
    });
    await env.sleep(to - (await env.currentTimeMs()) + 60_000);
    expect(await state()).toMatchObject({ plan: 'premium-student', pendingPlan: null, periodIndex: 2 });
    expect(billing.charges(input.subscriptionId).at(-1)?.input).toMatchObject({
      amountMinor: 599,
      period: 2,
    });
  });

  it('refuses an unknown plan, an incompatible plan and the same plan, answering the caller', async () => {
    const { handle, state } = await start();
    const refusal = (plan: string) =>
      handle.executeUpdate(changePlan, { args: [{ plan }] }).then(
        () => 'accepted',
        (err: unknown) =>
          err instanceof WorkflowUpdateFailedError ? String(err.cause?.message) : String(err),
      );
    expect(await refusal('no-such-plan')).toMatch(/Unknown plan "no-such-plan"/);
    expect(await refusal('demo')).toMatch(/another currency or period/);
    expect(await refusal('premium-individual')).toMatch(/already on premium-individual/);
    expect(await refusal('Not A Plan')).toMatch(/not a plan name/);
    expect((await state()).plan).toBe('premium-individual');
  });

  it('a provider timeout is retried with the same idempotency key and charged once', async () => {
    const pm = `pm-timeout-${randomUUID()}`;
    billing.script(pm, (n) => (n === 1 ? 'timeout' : 'succeeded'));
    const { input, state } = await start({ paymentMethodId: pm });
    const due = Date.parse((await state()).periodEnd as string);
    await env.sleep(due - (await env.currentTimeMs()) + 5 * 60_000);
    expect(await state()).toMatchObject({ status: 'active', periodIndex: 2 });
    const period2 = billing.attempts(input.subscriptionId).filter((a) => a.period === 2);
    expect(period2.length).toBeGreaterThanOrEqual(2);
    expect(new Set(period2.map((a) => a.idempotencyKey)).size).toBe(1);
    expect(periods(input.subscriptionId)).toEqual([1, 2]);
  });
});
