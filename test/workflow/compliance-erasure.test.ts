import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { gdprErasure, gdprExport } from '../../workflows';
import {
  extendDeadline,
  gdprErasureWorkflowId,
  gdprExportWorkflowId,
  requestProgress,
  SEARCH,
  TASK_QUEUE,
  type ErasureInput,
} from '../../workflows/compliance/contract';
import { fakeCompliance } from '../helpers/compliance-fakes';
import { timeSkippingEnv, workflowBundle, workflowSinks } from '../helpers/env';

const DAY = 86_400_000;
jest.setTimeout(120_000);

/** The erasure's order, its retries on residue and its legal clock, with days skipped in seconds. */
describe('gdprErasure and gdprExport (time-skipping, mocked activities)', () => {
  let env: TestWorkflowEnvironment;

  beforeAll(async () => {
    env = await timeSkippingEnv();
  }, 60_000);
  afterAll(async () => {
    await env?.teardown();
  });

  async function withWorker<T>(fake: ReturnType<typeof fakeCompliance>, work: () => Promise<T>): Promise<T> {
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: TASK_QUEUE,
      workflowBundle: await workflowBundle(),
      sinks: workflowSinks(),
      activities: fake.activities,
    });
    return worker.runUntil(work);
  }

  const input = (): ErasureInput => ({
    requestId: randomUUID(),
    userId: randomUUID(),
    requester: 'dpo-1',
    reason: 'objection',
  });
  const start = (i: ErasureInput) =>
    env.client.workflow.start(gdprErasure, {
      taskQueue: TASK_QUEUE,
      workflowId: gdprErasureWorkflowId(i.requestId),
      args: [i],
      typedSearchAttributes: [
        { key: SEARCH.requestId, value: i.requestId },
        { key: SEARCH.userId, value: i.userId },
      ],
    });

  it('works in the contract order, and retries only the store whose verification finds residue', async () => {
    const fake = fakeCompliance();
    fake.residue('clickhouse', 2);
    const i = input();
    const result = await withWorker(fake, async () => (await start(i)).result());
    expect(result).toMatchObject({ outcome: 'erased', escalated: false, certificateSha256: 'a'.repeat(64) });
    const names = fake.names();
    const at = (n: string) => names.indexOf(n);
    expect(at('recordRequest')).toBe(0);
    expect(at('stopNewData')).toBeLessThan(at('awaitListHeld:denied_subjects'));
    expect(at('awaitListHeld:play_suppressions')).toBeLessThan(at('endSubscriptions'));
    expect(at('endSubscriptions')).toBeLessThan(at('detachPaymentMethods'));
    for (const store of ['postgres', 'clickhouse', 'opensearch', 'minio'])
      expect(at('detachPaymentMethods')).toBeLessThan(at(`erase:${store}`));
    expect(names.filter((n) => n === 'erase:clickhouse')).toHaveLength(3);
    expect(names.filter((n) => n === 'verify:clickhouse')).toHaveLength(3);
    expect(names.filter((n) => n === 'erase:postgres')).toHaveLength(1);
    expect(names.slice(-3)).toEqual(['kafkaRetention', 'writeCertificate', 'completeRequest']);
    const cert = fake.calls.find((c) => c.name === 'writeCertificate')?.input as {
      stores: { store: string; rounds: number }[];
    };
    expect(cert.stores.map((s) => [s.store, s.rounds])).toEqual([
      ['auth', 1],
      ['subscriptions', 1],
      ['payments', 1],
      ['postgres', 1],
      ['clickhouse', 3],
      ['opensearch', 1],
      ['minio', 1],
    ]);
    // No personal data crossed the workflow: IDs, codes and counts only.
    expect(JSON.stringify(fake.calls)).not.toMatch(/@/);
  });

  it('escalates at day 25 while a store keeps failing verification, then completes when it recovers', async () => {
    const fake = fakeCompliance();
    fake.hold('opensearch');
    const i = input();
    await withWorker(fake, async () => {
      const handle = await start(i);
      const started = await env.currentTimeMs();
      await env.sleep(24 * DAY);
      expect((await handle.query(requestProgress)).escalated).toBe(false);
      await env.sleep(1.5 * DAY);
      const progress = await handle.query(requestProgress);
      expect(progress).toMatchObject({ escalated: true, status: 'escalated' });
      expect(progress.stores.opensearch).toBe('residue');
      const escalation = fake.calls.find((c) => c.name === 'escalateRequest');
      expect(escalation).toBeDefined();
      const attrs = (await handle.describe()).typedSearchAttributes;
      expect(attrs.get(SEARCH.escalated)).toBe(true);
      expect(attrs.get(SEARCH.status)).toBe('escalated');
      fake.release();
      const result = await handle.result();
      expect(result).toMatchObject({ outcome: 'erased', escalated: true });
      const cert = fake.calls.find((c) => c.name === 'writeCertificate')?.input as { escalated: boolean };
      expect(cert.escalated).toBe(true);
      expect((await env.currentTimeMs()) - started).toBeGreaterThan(25 * DAY);
    });
  }, 120_000);

  it('moves the escalation with an Art. 12(3) extension, once', async () => {
    const fake = fakeCompliance();
    fake.hold('minio');
    const i = input();
    await withWorker(fake, async () => {
      const handle = await start(i);
      await env.sleep(10 * DAY);
      const { dueAt } = await handle.executeUpdate(extendDeadline, {
        args: [{ months: 2, reason: 'complexity', by: 'dpo-1' }],
      });
      expect((await handle.query(requestProgress)).dueAt).toBe(dueAt);
      await expect(
        handle.executeUpdate(extendDeadline, { args: [{ months: 1, reason: 'complexity', by: 'dpo-1' }] }),
      ).rejects.toMatchObject({ cause: { message: expect.stringMatching(/one extension/) } });
      await env.sleep(20 * DAY); // day 30: past day 25, not yet five days before the new due date
      expect((await handle.query(requestProgress)).escalated).toBe(false);
      expect(fake.names()).not.toContain('escalateRequest');
      fake.release();
      expect(await handle.result()).toMatchObject({ outcome: 'erased', escalated: false });
      expect(fake.calls.find((c) => c.name === 'extendRequest')?.input).toMatchObject({
        reason: 'complexity',
        by: 'dpo-1',
      });
    });
  }, 120_000);

  it('records an unknown user and a joined request without erasing anything', async () => {
    const unknown = fakeCompliance({ known: false });
    expect(await withWorker(unknown, async () => (await start(input())).result())).toMatchObject({
      outcome: 'unknown_user',
    });
    expect(unknown.names()).toEqual(['recordRequest']);
    const joined = fakeCompliance({ joined: 'open-request' });
    expect(await withWorker(joined, async () => (await start(input())).result())).toMatchObject({
      outcome: 'joined',
      joined: 'open-request',
    });
    expect(joined.names()).toEqual(['recordRequest']);
  });

  it('exports, or answers that nothing is left after an erasure', async () => {
    const run = async (fake: ReturnType<typeof fakeCompliance>) => {
      const i = input();
      return withWorker(fake, async () =>
        (
          await env.client.workflow.start(gdprExport, {
            taskQueue: TASK_QUEUE,
            workflowId: gdprExportWorkflowId(i.requestId),
            args: [{ requestId: i.requestId, userId: i.userId, requester: i.userId }],
          })
        ).result(),
      );
    };
    const made = fakeCompliance();
    expect(await run(made)).toMatchObject({ outcome: 'exported', bytes: 1234 });
    expect(made.names()).toEqual(['recordRequest', 'setRequestStatus', 'buildExport', 'completeRequest']);
    const erased = fakeCompliance({ erased: true });
    expect(await run(erased)).toMatchObject({ outcome: 'nothing_left' });
    expect(erased.names()).toEqual(['recordRequest', 'completeRequest']);
  });
});
