import { Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ping } from '../../workflows';
import { timeSkippingEnv, workflowBundle, workflowSinks } from '../helpers/env';
import { TASK_QUEUE } from '../../workflows/ops/contract';

describe('ping workflow (time-skipping test server, offline)', () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await timeSkippingEnv();
  }, 60_000);
  afterAll(async () => {
    await env?.teardown();
  });

  it('sleeps 30 days in seconds of wall time and answers through its activity', async () => {
    const calls: string[] = [];
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: TASK_QUEUE,
      workflowBundle: await workflowBundle(),
      sinks: workflowSinks(),
      activities: {
        pong: async (token: string) => {
          calls.push(token);
          return { answeredBy: 'mock', attempt: 1 };
        },
      },
    });
    const result = await worker.runUntil(async () => {
      const before = await env.currentTimeMs();
      const out = await env.client.workflow.execute(ping, {
        taskQueue: TASK_QUEUE,
        workflowId: 'ping-30-days',
        args: [{ token: 't-1', delay: '30 days' }],
      });
      return { out, skippedMs: (await env.currentTimeMs()) - before };
    });
    expect(result.out).toEqual({ token: 't-1', answeredBy: 'mock', activityAttempt: 1 });
    expect(calls).toEqual(['t-1']);
    // 30 days of workflow time passed inside this test's two-minute limit: time was skipped, not waited.
    expect(result.skippedMs).toBeGreaterThanOrEqual(30 * 24 * 3600 * 1000);
  }, 120_000);
});
