import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { ping } from '../../workflows';
import { temporalCli, workflowBundle, workflowSinks } from '../helpers/env';
import { TASK_QUEUE } from '../../workflows/ops/contract';

/** createLocal with existing-path: a real dev server (the CLI from the Go proxy) running a real worker. */
describe('Temporal dev server through TestWorkflowEnvironment.createLocal', () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: temporalCli() }, ip: '127.0.0.1' },
    });
  }, 60_000);
  afterAll(async () => {
    await env?.teardown();
  });

  it('runs ping on a real worker with the real activity', async () => {
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: TASK_QUEUE,
      workflowBundle: await workflowBundle(),
      sinks: workflowSinks(),
      activities: createActivities(),
    });
    const result = await worker.runUntil(
      env.client.workflow.execute(ping, {
        taskQueue: TASK_QUEUE,
        workflowId: 'ping-local',
        args: [{ token: 'local', delay: '1s' }],
      }),
    );
    expect(result).toEqual({ token: 'local', answeredBy: 'ops/5', activityAttempt: 1 });
  }, 60_000);
});
