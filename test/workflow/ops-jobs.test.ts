import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { backupStores, refreshRecommendations, restoreDrill, scheduledBackup } from '../../workflows';
import { OpsFailure, SEARCH, TASK_QUEUE, minuteKey } from '../../workflows/ops/contract';
import { timeSkippingEnv, workflowBundle, workflowSinks } from '../helpers/env';
import { fakeOps, type OpsKnobs } from '../helpers/ops-fakes';

/**
 * The ops jobs' workflows with mocked activities: the order of their steps, how a failure or an operator's
 * cancellation is recorded before the run ends, the drill that fails its run on purpose, and the launcher
 * that runs a job once per business key.
 */
describe('ops job workflows (time-skipping, mocked activities)', () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await timeSkippingEnv();
  }, 60_000);
  afterAll(async () => {
    await env?.teardown();
  });

  async function withWorker<T>(knobs: OpsKnobs, body: (ops: ReturnType<typeof fakeOps>) => Promise<T>) {
    const ops = fakeOps(knobs);
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: TASK_QUEUE,
      workflowBundle: await workflowBundle(),
      sinks: workflowSinks(),
      activities: ops.activities,
    });
    return worker.runUntil(body(ops));
  }
  const failureOf = (err: unknown): ApplicationFailure | undefined => {
    for (let e = err; e; e = (e as { cause?: unknown }).cause) if (e instanceof ApplicationFailure) return e;
    return undefined;
  };
  const backupInput = { backupId: '2026-01-04T0300Z', retentionDays: 14, keepAtLeast: 3 };

  it('backs up every store, writes the manifest last, then expires old backups', async () => {
    await withWorker({}, async (ops) => {
      const result = await env.client.workflow.execute(backupStores, {
        taskQueue: TASK_QUEUE,
        workflowId: 'backup-2026-01-04T0300Z',
        args: [backupInput],
      });
      expect(result).toMatchObject({
        backupId: backupInput.backupId,
        objects: 4,
        expired: ['2020-01-01T0300Z'],
      });
      expect(ops.names()).toEqual([
        'recordJobStarted',
        'beginBackup',
        'backupPostgres',
        'backupClickHouse',
        'backupOpenSearch',
        'completeBackup',
        'expireBackups',
        'recordJobFinished',
      ]);
      expect(ops.calls.at(-1)?.input).toMatchObject({
        runKey: 'backup-2026-01-04T0300Z',
        status: 'succeeded',
      });
    });
  }, 60_000);

  it('marks a backup failed and records why when a store cannot be backed up; the run fails', async () => {
    await withWorker({ fail: 'backupClickHouse' }, async (ops) => {
      const handle = await env.client.workflow.start(backupStores, {
        taskQueue: TASK_QUEUE,
        workflowId: 'backup-failing',
        args: [backupInput],
      });
      await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
      expect(ops.names()).not.toContain('completeBackup');
      const marked = ops.calls.find((c) => c.name === 'markBackupFailed')?.input as { reason: string };
      expect(marked.reason).toMatch(/backupClickHouse could not reach its store/);
      expect(ops.calls.at(-1)).toMatchObject({
        name: 'recordJobFinished',
        input: { status: 'failed', error: expect.stringMatching(/could not reach/) },
      });
      expect((await handle.describe()).typedSearchAttributes.get(SEARCH.status)).toBe('failed');
    });
  }, 60_000);

  it("turns an operator's cancellation into an orderly end: the backup marked failed, the run canceled", async () => {
    await withWorker({ hang: 'backupPostgres' }, async (ops) => {
      const handle = await env.client.workflow.start(backupStores, {
        taskQueue: TASK_QUEUE,
        workflowId: 'backup-canceled',
        args: [backupInput],
      });
      while (!ops.names().includes('backupPostgres')) await new Promise((r) => setTimeout(r, 20));
      await handle.cancel();
      const err = await handle.result().catch((e: unknown) => e);
      expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      expect(ops.calls.find((c) => c.name === 'markBackupFailed')?.input).toEqual({
        backupId: backupInput.backupId,
        reason: 'canceled by an operator',
      });
      expect(ops.calls.at(-1)).toMatchObject({ name: 'recordJobFinished', input: { status: 'failed' } });
      expect((await handle.describe()).typedSearchAttributes.get(SEARCH.status)).toBe('canceled');
    });
  }, 60_000);

  it('lets a backup whose stores are all dumped complete when the cancellation comes late', async () => {
    await withWorker({ slow: 'completeBackup' }, async (ops) => {
      const handle = await env.client.workflow.start(backupStores, {
        taskQueue: TASK_QUEUE,
        workflowId: 'backup-canceled-late',
        args: [backupInput],
      });
      while (!ops.names().includes('completeBackup')) await new Promise((r) => setTimeout(r, 20));
      await handle.cancel();
      expect(await handle.result()).toMatchObject({
        backupId: backupInput.backupId,
        expired: ['2020-01-01T0300Z'],
      });
      expect(ops.names()).not.toContain('markBackupFailed');
      expect(ops.calls.at(-1)).toMatchObject({ name: 'recordJobFinished', input: { status: 'succeeded' } });
      expect((await handle.describe()).status.name).toBe('COMPLETED');
    });
  }, 60_000);

  it('records a canceled drill as canceled (no verdict), not as a failed one', async () => {
    await withWorker({ hang: 'restoreClickHouseBackup' }, async (ops) => {
      const handle = await env.client.workflow.start(restoreDrill, {
        taskQueue: TASK_QUEUE,
        workflowId: 'restore-drill-canceled',
        args: [{ drillId: 'restore-drill-canceled' }],
      });
      while (!ops.names().includes('restoreClickHouseBackup')) await new Promise((r) => setTimeout(r, 20));
      await handle.cancel();
      const err = await handle.result().catch((e: unknown) => e);
      expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      expect(ops.names()).not.toContain('finishRestoreDrill');
      expect(ops.calls.find((c) => c.name === 'abandonRestoreDrill')?.input).toEqual({
        drillId: 'restore-drill-canceled',
        reason: 'canceled by an operator',
      });
    });
  }, 60_000);

  it('passes a drill that found nothing, and shows it as passed', async () => {
    await withWorker({}, async (ops) => {
      const handle = await env.client.workflow.start(restoreDrill, {
        taskQueue: TASK_QUEUE,
        workflowId: 'restore-drill-pass',
        args: [{ drillId: 'restore-drill-pass' }],
      });
      expect(await handle.result()).toEqual({
        drillId: 'restore-drill-pass',
        backupId: '2026-01-04T0300Z',
        status: 'passed',
        checks: 11,
        failures: [],
      });
      expect(ops.names()).toEqual([
        'recordJobStarted',
        'beginRestoreDrill',
        'restorePostgresBackup',
        'restoreClickHouseBackup',
        'restoreOpenSearchBackup',
        'finishRestoreDrill',
        'recordJobFinished',
      ]);
      expect((await handle.describe()).typedSearchAttributes.get(SEARCH.status)).toBe('passed');
    });
  }, 60_000);

  it('records a drill that found damage, then fails its run loudly with what it found', async () => {
    const damage = {
      store: 'postgres' as const,
      object: 'public.users',
      reason: '2 rows restored, the source had 3',
    };
    await withWorker({ drillFailures: [damage] }, async (ops) => {
      const err = await env.client.workflow
        .execute(restoreDrill, {
          taskQueue: TASK_QUEUE,
          workflowId: 'restore-drill-damaged',
          args: [{ drillId: 'restore-drill-damaged' }],
        })
        .catch((e: unknown) => e);
      const failure = failureOf(err);
      expect(failure?.type).toBe(OpsFailure.RestoreDrillFailed);
      expect(failure?.message).toContain('public.users: 2 rows restored, the source had 3');
      expect(ops.calls.find((c) => c.name === 'finishRestoreDrill')?.input).toMatchObject({
        failures: [damage],
      });
      expect(ops.calls.at(-1)).toMatchObject({ name: 'recordJobFinished', input: { status: 'failed' } });
    });
  }, 60_000);

  it('fails the drill when there is no backup at all, without restoring anything', async () => {
    await withWorker({ noBackup: true }, async (ops) => {
      const err = await env.client.workflow
        .execute(restoreDrill, {
          taskQueue: TASK_QUEUE,
          workflowId: 'restore-drill-nothing',
          args: [{ drillId: 'restore-drill-nothing' }],
        })
        .catch((e: unknown) => e);
      expect(failureOf(err)?.message).toMatch(/no completed backup/);
      expect(ops.names().filter((n) => n.startsWith('restore'))).toEqual([]);
    });
  }, 60_000);

  it('computes neighbours once, then every shard, then drops old neighbour tables', async () => {
    await withWorker({}, async (ops) => {
      const result = await env.client.workflow.execute(refreshRecommendations, {
        taskQueue: TASK_QUEUE,
        workflowId: 'recommendations-2026-01-04T0430Z',
        args: [{ windowDays: 30, perUser: 20, neighbors: 20, shards: 3 }],
      });
      expect(result).toEqual({
        runId: 'recommendations-2026-01-04T0430Z',
        tracksWithNeighbors: 12,
        listeners: 10 + 11 + 12,
      });
      const shards = ops.calls
        .filter((c) => c.name === 'recommendForShard')
        .map((c) => (c.input as { shard: number }).shard);
      expect(shards.sort()).toEqual([0, 1, 2]);
      expect(ops.names().indexOf('dropOldNeighborRuns')).toBeGreaterThan(
        ops.names().lastIndexOf('recommendForShard'),
      );
    });
  }, 60_000);

  it('launches a job under the minute it was due, once: a second firing of that minute runs nothing', async () => {
    await withWorker({}, async (ops) => {
      const input = { retentionDays: 14, keepAtLeast: 3 };
      const first = await env.client.workflow.execute(scheduledBackup, {
        taskQueue: TASK_QUEUE,
        workflowId: 'ops-backup-scheduled-1',
        args: [input],
      });
      expect(first.started).toBe(true);
      const backupId = first.workflowId.replace(/^backup-/, '');
      expect(backupId).toMatch(/^\d{4}-\d{2}-\d{2}T\d{4}Z$/);
      expect(first.result?.backupId).toBe(backupId);
      expect(minuteKey(new Date(`${backupId.slice(0, 13)}:${backupId.slice(13, 15)}:00Z`))).toBe(backupId);
      const begun = ops.calls.filter((c) => c.name === 'beginBackup').length;
      const second = await env.client.workflow.execute(scheduledBackup, {
        taskQueue: TASK_QUEUE,
        workflowId: 'ops-backup-scheduled-2',
        args: [input],
      });
      // Skipped time may cross a minute between the two starts; within one minute nothing runs twice.
      if (second.workflowId === first.workflowId) {
        expect(second).toEqual({ workflowId: first.workflowId, started: false });
        expect(ops.calls.filter((c) => c.name === 'beginBackup')).toHaveLength(begun);
      } else expect(second.started).toBe(true);
    });
  }, 60_000);
});
