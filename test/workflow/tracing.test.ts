import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { Client } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { loadConfig } from '../../lib/config';
import { setUpTracing } from '../../lib/telemetry';
import { tracingWorkerOptions } from '../../workers/interceptors';
import { ping } from '../../workflows';
import { timeSkippingEnv, workflowBundle } from '../helpers/env';
import { TASK_QUEUE } from '../../workflows/ops/contract';

/** OpenTelemetry interceptors: one trace from the client's start through the workflow to its activity. */
describe('tracing', () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await timeSkippingEnv();
  }, 60_000);
  afterAll(async () => {
    await env?.teardown();
  });

  it('exports spans for starting the workflow, running it, and running its activity, in one trace', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = setUpTracing(loadConfig({}).otel, 'cadenza-test', exporter);
    const client = new Client({
      connection: env.connection,
      interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
    });
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: TASK_QUEUE,
      workflowBundle: await workflowBundle(),
      activities: { pong: async () => ({ answeredBy: 'traced', attempt: 1 }) },
      ...tracingWorkerOptions(tracing),
    });
    await worker.runUntil(
      client.workflow.execute(ping, {
        taskQueue: TASK_QUEUE,
        workflowId: 'ping-traced',
        args: [{ token: 't' }],
      }),
    );
    await tracing.processor.forceFlush();
    const spans = exporter.getFinishedSpans();
    const names = spans.map((s) => s.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'StartWorkflow:ping',
        'RunWorkflow:ping',
        'StartActivity:pong',
        'RunActivity:pong',
      ]),
    );
    expect(new Set(spans.map((s) => s.spanContext().traceId)).size).toBe(1);
    await tracing.shutdown();
  }, 60_000);
});
