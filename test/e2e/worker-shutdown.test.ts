import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { ping } from '../../workflows';
import { testConfig, workflowBundle, workflowSinks } from '../helpers/env';
import { TASK_QUEUE } from '../../workflows/ops/contract';

/** SIGTERM to the worker process during a slow activity: the activity finishes, nothing is lost or run twice. */
const cfg = testConfig();
const root = path.join(__dirname, '..', '..');

function startWorkerProcess(): ChildProcess {
  return spawn(path.join(root, 'node_modules', '.bin', 'tsx'), [path.join(root, 'workers', 'main.ts')], {
    cwd: root,
    env: {
      ...process.env,
      CADENZA_TEMPORAL_NAMESPACE: cfg.temporal.namespace,
      CADENZA_WORKER_TASK_QUEUES: TASK_QUEUE,
      CADENZA_WORKER_HEALTH_PORT: '3911',
      CADENZA_WORKER_METRICS_PORT: '9911',
      CADENZA_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('worker graceful shutdown', () => {
  let connection: Connection;
  let client: Client;
  beforeAll(async () => {
    connection = await Connection.connect({ address: cfg.temporal.address });
    client = new Client({ connection, namespace: cfg.temporal.namespace });
  });
  afterAll(async () => {
    await connection?.close();
  });

  it('lets the in-flight activity finish on SIGTERM, then another worker completes the run', async () => {
    const proc = startWorkerProcess();
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    await until('worker health', async () =>
      (await fetch('http://127.0.0.1:3911/healthz')).ok ? true : undefined,
    );

    const handle = await client.workflow.start(ping, {
      taskQueue: TASK_QUEUE,
      workflowId: `ping-shutdown-${randomUUID()}`,
      args: [{ token: 'graceful', workMs: 4000 }],
    });
    await until('the activity to start', async () => {
      const d = await handle.describe();
      return d.raw.pendingActivities?.some((a) => Number(a.attempt) === 1 && a.lastStartedTime)
        ? true
        : undefined;
    });

    proc.kill('SIGTERM');
    expect(await exited).toBe(0);

    // A fresh worker picks up the workflow task that follows the finished activity.
    const worker = await Worker.create({
      connection: await NativeConnection.connect({ address: cfg.temporal.address }),
      namespace: cfg.temporal.namespace,
      taskQueue: TASK_QUEUE,
      workflowBundle: await workflowBundle(),
      sinks: workflowSinks(),
      activities: createActivities(),
    });
    const result = await worker.runUntil(handle.result());
    // attempt 1: the activity completed during the grace period, and was not retried on the new worker.
    expect(result).toEqual({ token: 'graceful', answeredBy: 'ops/8', activityAttempt: 1 });
  }, 120_000);
});
