import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { stackContext, testServerLauncher } from '../stack/context';
import { loadConfig } from '../lib/config';
import { setUpTracing } from '../lib/telemetry';
import { tracingWorkerOptions, WORKFLOW_INTERCEPTORS } from '../workers/interceptors';
import { ping } from '../workflows';

/**
 * Records the event histories that the replay tests replay on every change (test/replay/histories).
 * Run it when a workflow changes on purpose — behind patched() for runs already in flight — and commit
 * the new files beside the old ones: old histories must keep replaying.
 */
const out = path.join(__dirname, '..', 'test', 'replay', 'histories');

async function main(): Promise<void> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: testServerLauncher(stackContext()) } },
  });
  try {
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: 'maintenance',
      workflowBundle: await bundleWorkflowCode({
        workflowsPath: require.resolve('../workflows'),
        workflowInterceptorModules: [WORKFLOW_INTERCEPTORS],
      }),
      activities: {
        pong: async (token: string) => ({ answeredBy: `maintenance/${token.length}`, attempt: 1 }),
      },
      ...tracingWorkerOptions(setUpTracing(loadConfig({}).otel, 'record-histories')),
    });
    const scenarios = {
      'ping-plain': { token: 'replay' },
      'ping-with-timer': { token: 'replay', delay: '3 days' as const },
    };
    mkdirSync(out, { recursive: true });
    await worker.runUntil(async () => {
      for (const [name, input] of Object.entries(scenarios)) {
        const handle = await env.client.workflow.start(ping, {
          taskQueue: 'maintenance',
          workflowId: `record-${name}`,
          args: [input],
        });
        await handle.result();
        writeFileSync(path.join(out, `${name}.json`), historyToJSON(await handle.fetchHistory()));
        process.stdout.write(`recorded ${name}\n`);
      }
    });
  } finally {
    await env.teardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
