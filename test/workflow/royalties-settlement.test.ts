import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { monthOf, previousMonth } from '../../domain/royalties/pins';
import { royaltySettlement, scheduledRoyaltySettlement } from '../../workflows';
import {
  TASK_QUEUE,
  approveSettlement,
  rejectSettlement,
  settlementProgress,
  settlementWorkflowId,
  type SettlementInput,
} from '../../workflows/royalties/contract';
import { fakeRoyalties } from '../helpers/royalties-fakes';
import { timeSkippingEnv, workflowBundle, workflowSinks } from '../helpers/env';

const DAY = 86_400_000;

/** The settlement's lifecycle with mocked activities: approvals, reminders, cut-off, cancellation. */
jest.setTimeout(60_000);

describe('royalty settlement workflow (time-skipping, mocked activities)', () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  const fake = fakeRoyalties({
    '2026-01': { exceptions: 2 },
    '2026-02': { kind: 'verification' },
    '2026-03': { refuse: { refused: 'RunInProgress', reason: 'a settlement of 2026-03 is still computing' } },
    '2026-05': { supersedes: [settlementWorkflowId('2026-04')] },
    '2025-11': { statementDelayMs: 1500 },
  });

  beforeAll(async () => {
    env = await timeSkippingEnv();
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: TASK_QUEUE,
      workflowBundle: await workflowBundle(),
      sinks: workflowSinks(),
      activities: fake.activities,
    });
    running = worker.run();
  }, 60_000);
  afterAll(async () => {
    worker?.shutdown();
    await running;
    await env?.teardown();
  });

  async function start(month: string, over: Partial<SettlementInput> = {}) {
    const input: SettlementInput = {
      month,
      rerun: 0,
      startedBy: 'alice',
      shards: 3,
      latenessHours: 2,
      reminderDays: 3,
      ...over,
    };
    return env.client.workflow.start(royaltySettlement, {
      taskQueue: TASK_QUEUE,
      workflowId: settlementWorkflowId(month, input.rerun),
      args: [input],
    });
  }

  async function until(handle: WorkflowHandle<typeof royaltySettlement>, status: string) {
    for (let i = 0; i < 500; i++) {
      const p = await handle.query(settlementProgress);
      if (p.status === status) return p;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`run never reached ${status}`);
  }

  const refusal = async (p: Promise<unknown>) => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
    const cause = (err as WorkflowUpdateFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    return (cause as ApplicationFailure).type;
  };

  it('is approved only by a finance user other than its starter, after a reminder every N days', async () => {
    const handle = await start('2025-10');
    const waiting = await until(handle, 'awaiting_approval');
    expect(waiting).toMatchObject({ shardsDone: 3, shardsTotal: 3, phase: 'deciding', escalated: false });
    expect(
      fake.calls('computeShardPayouts').filter((c) => (c.args as { runId: string }).runId === waiting.runId),
    ).toHaveLength(3);

    expect(await refusal(handle.executeUpdate(approveSettlement, { args: [{ approver: 'alice' }] }))).toBe(
      'SameApprover',
    );
    await env.sleep(3 * DAY + 3_600_000);
    const reminded = fake
      .calls('remindApprovers')
      .filter((c) => (c.args as { runId: string }).runId === waiting.runId);
    expect(reminded).toHaveLength(1);
    expect((await handle.query(settlementProgress)).escalated).toBe(true);
    await env.sleep(3 * DAY);
    expect(
      fake.calls('remindApprovers').filter((c) => (c.args as { runId: string }).runId === waiting.runId),
    ).toHaveLength(2);

    // Two approvers at once: one decision, the other is told the run is decided.
    const [first, second] = await Promise.allSettled([
      handle.executeUpdate(approveSettlement, { args: [{ approver: 'bob' }] }),
      handle.executeUpdate(approveSettlement, { args: [{ approver: 'carol' }] }),
    ]);
    const decisions = [first, second].filter((r) => r.status === 'fulfilled');
    expect(decisions).toHaveLength(1);
    const refused = [first, second].find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(await refusal(Promise.reject(refused.reason))).toBe('NotAwaitingApproval');
    expect(await handle.result()).toMatchObject({ status: 'approved', runId: waiting.runId, reason: null });
    expect(fake.run(waiting.runId as string)?.status).toBe('approved');
  });

  it('takes a decision that arrives while the run still computes once the run is ready for it', async () => {
    // The API sees the row say awaiting_approval a moment before the workflow has taken in that step.
    const handle = await start('2025-11');
    await until(handle, 'running');
    const decision = await handle.executeUpdate(approveSettlement, { args: [{ approver: 'bob' }] });
    expect(decision).toMatchObject({ status: 'approved' });
    expect(fake.calls('writeStatement').length).toBeGreaterThan(0);
    expect(await handle.result()).toMatchObject({ status: 'approved' });
  });

  it('holds a run with exceptions: approval refused, rejection closes it', async () => {
    const handle = await start('2026-01');
    await until(handle, 'held');
    expect(await refusal(handle.executeUpdate(approveSettlement, { args: [{ approver: 'bob' }] }))).toBe(
      'RunHeld',
    );
    const d = await handle.executeUpdate(rejectSettlement, {
      args: [{ by: 'alice', reason: 'rates missing for NO' }],
    });
    expect(d.status).toBe('rejected');
    expect(await handle.result()).toMatchObject({ status: 'rejected' });
  });

  it('waits for the cut-off of a month not yet closed, then settles it', async () => {
    const now = await env.currentTimeMs();
    const month = monthOf(now);
    const handle = await start(month);
    const p = await handle.query(settlementProgress);
    expect(['freezing', 'waiting_for_cutoff']).toContain(p.phase);
    await env.sleep(1000);
    expect((await handle.query(settlementProgress)).phase).toBe('waiting_for_cutoff');
    const runId = (await handle.query(settlementProgress)).runId as string;
    expect(fake.calls('snapshotPlays').some((c) => c.args === runId)).toBe(false);
    await env.sleep(32 * DAY);
    await until(handle, 'awaiting_approval');
    expect(fake.calls('snapshotPlays').some((c) => c.args === runId)).toBe(true);
    await handle.cancel();
  });

  it('a verification re-run compares with ClickHouse and closes as verified, with nothing to approve', async () => {
    const handle = await start('2026-02', { rerun: 1 });
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'verified', kind: 'verification', reproduced: true });
    expect(fake.calls('compareWithClickHouse').map((c) => c.args)).toContain(result.runId);
    expect(fake.calls('snapshotPlays').map((c) => c.args)).not.toContain(result.runId);
  });

  it('records a cancellation from Temporal as the run ending canceled', async () => {
    const handle = await start('2025-11');
    const { runId } = await until(handle, 'awaiting_approval');
    await handle.cancel();
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(fake.run(runId as string)?.status).toBe('canceled');
    expect(fake.calls('endSettlement').map((c) => c.args)).toContainEqual(
      expect.objectContaining({ workflowId: settlementWorkflowId('2025-11'), status: 'canceled' }),
    );
  });

  it('a re-run that supersedes an open run closes that run as superseded', async () => {
    const open = await start('2026-04');
    await until(open, 'awaiting_approval');
    const rerun = await start('2026-05');
    await until(rerun, 'awaiting_approval');
    expect(await open.result()).toMatchObject({ status: 'superseded' });
    await rerun.cancel();
  });

  it('a refused freeze closes the run with the reason, without failing it', async () => {
    const handle = await start('2026-03', { rerun: 2 });
    expect(await handle.result()).toEqual({
      month: '2026-03',
      runId: null,
      kind: null,
      status: 'refused',
      statementSha256: null,
      reproduced: null,
      reason: 'a settlement of 2026-03 is still computing',
    });
  });

  it("the schedule's workflow starts the previous month's settlement under its business key, once", async () => {
    const input = { shards: 2, latenessHours: 2, reminderDays: 3 };
    // Past every month an earlier test settled (the cut-off test's ended canceled): this one is new.
    await env.sleep(40 * DAY);
    const first = await env.client.workflow.execute(scheduledRoyaltySettlement, {
      taskQueue: TASK_QUEUE,
      workflowId: 'royalty-settlement-scheduled-2026-12-01T02:00:00Z',
      args: [input],
    });
    const month = previousMonth(await env.currentTimeMs());
    expect(first).toEqual({ month, workflowId: settlementWorkflowId(month), started: true });
    const again = await env.client.workflow.execute(scheduledRoyaltySettlement, {
      taskQueue: TASK_QUEUE,
      workflowId: 'royalty-settlement-scheduled-again',
      args: [input],
    });
    expect(again).toEqual({ month, workflowId: settlementWorkflowId(month), started: false });
    const child = env.client.workflow.getHandle(settlementWorkflowId(month));
    await until(child as WorkflowHandle<typeof royaltySettlement>, 'awaiting_approval');
    expect(fake.runByWorkflow(settlementWorkflowId(month))?.startedBy).toBe('schedule');
    await child.cancel();
    await child.result().catch(() => undefined);
    // A month's first run happens once: a later firing leaves the closed run as it ended.
    const later = await env.client.workflow.execute(scheduledRoyaltySettlement, {
      taskQueue: TASK_QUEUE,
      workflowId: 'royalty-settlement-scheduled-after-close',
      args: [input],
    });
    expect(later).toEqual({ month, workflowId: settlementWorkflowId(month), started: false });
  });
});
