import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { stackContext, testServerLauncher } from '../stack/context';
import { loadConfig } from '../lib/config';
import { setUpTracing } from '../lib/telemetry';
import { tracingWorkerOptions, WORKFLOW_INTERCEPTORS } from '../workers/interceptors';
import { ping, subscription } from '../workflows';
import {
  cancelSubscription,
  changePlan,
  paymentMethodUpdated,
  subscriptionState,
} from '../workflows/billing/contract';
import { fakeBilling, type Script } from '../test/helpers/billing-fakes';
import { recordComplianceHistories } from './histories/compliance';

/**
 * Records the event histories that the replay tests replay on every change (test/replay/histories).
 * Run it when a workflow changes on purpose — behind patched() for runs already in flight — and commit
 * the new files beside the old ones: old histories must keep replaying.
 */
const out = path.join(__dirname, '..', 'test', 'replay', 'histories');
const DAY = 86_400_000;

type Env = TestWorkflowEnvironment;
type Sub = WorkflowHandle<typeof subscription>;

/** Subscription scenarios: a payment-method script and what happens to the run. */
const subscriptionScenarios: Record<string, { script: Script; drive: (env: Env, h: Sub) => Promise<void> }> =
  {
    'renewals-quarter': { script: () => 'succeeded', drive: (env) => env.sleep(92 * DAY) },
    'grace-recovered': {
      script: (n) => (n === 1 || n === 2 ? 'soft' : 'succeeded'),
      drive: (env) => env.sleep(40 * DAY),
    },
    'grace-new-method': {
      script: (n) => (n === 0 ? 'succeeded' : 'soft'),
      drive: async (env, h) => {
        await untilDue(env, h, 60_000);
        await h.executeUpdate(paymentMethodUpdated, { args: [{ paymentMethodId: 'pm-replay-new' }] });
        await env.sleep(60_000);
      },
    },
    'grace-expired': {
      script: (n) => (n === 0 ? 'succeeded' : 'soft'),
      drive: (_env, h) => h.result().then(),
    },
    'hard-decline': {
      script: (n) => (n === 0 ? 'succeeded' : 'hard'),
      drive: (_env, h) => h.result().then(),
    },
    'cancel-at-period-end': {
      script: () => 'succeeded',
      drive: async (_env, h) => {
        await h.executeUpdate(cancelSubscription, { args: [{ atPeriodEnd: true }] });
        await h.result();
      },
    },
    'cancel-now': {
      script: () => 'succeeded',
      drive: async (_env, h) => {
        await h.executeUpdate(cancelSubscription, { args: [{ atPeriodEnd: false }] });
        await h.result();
      },
    },
    'plan-changes': {
      script: () => 'succeeded',
      drive: async (env, h) => {
        await env.sleep(10 * DAY);
        await h.executeUpdate(changePlan, { args: [{ plan: 'premium-family' }] });
        await h.executeUpdate(changePlan, { args: [{ plan: 'premium-student' }] });
        await untilDue(env, h, 60_000);
      },
    },
    'provider-timeout': {
      script: (n) => (n === 1 ? 'timeout' : 'succeeded'),
      drive: (env) => env.sleep(32 * DAY),
    },
  };

async function untilDue(env: Env, h: Sub, after: number): Promise<void> {
  const due = Date.parse((await h.query(subscriptionState)).periodEnd as string);
  await env.sleep(due - (await env.currentTimeMs()) + after);
}

/** Every run of a chain that continued as new, first to last. */
async function runHistories(env: Env, workflowId: string, firstRunId: string) {
  const histories = [];
  for (let runId: string | undefined = firstRunId; runId;) {
    const history = await env.client.workflow.getHandle(workflowId, runId).fetchHistory();
    histories.push(history);
    runId =
      history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return histories;
}

function save(name: string, history: Parameters<typeof historyToJSON>[0]): void {
  writeFileSync(path.join(out, `${name}.json`), historyToJSON(history));
  process.stdout.write(`recorded ${name}\n`);
}

async function main(): Promise<void> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: testServerLauncher(stackContext()) } },
  });
  try {
    const workflowBundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../workflows'),
      workflowInterceptorModules: [WORKFLOW_INTERCEPTORS],
    });
    const tracing = tracingWorkerOptions(setUpTracing(loadConfig({}).otel, 'record-histories'));
    mkdirSync(out, { recursive: true });
    // `npm run record:histories -- gdpr` records only the GDPR scenarios.
    if (process.argv[2] === 'gdpr') {
      await recordComplianceHistories(env, { workflowBundle, ...tracing }, save);
      return;
    }
    const billing = fakeBilling();
    const maintenance = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: 'ops',
      workflowBundle,
      activities: {
        pong: async (token: string) => ({ answeredBy: `maintenance/${token.length}`, attempt: 1 }),
      },
      ...tracing,
    });
    const billingWorker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: 'billing',
      workflowBundle,
      activities: billing.activities,
      ...tracing,
    });
    mkdirSync(out, { recursive: true });
    await recordComplianceHistories(env, { workflowBundle, ...tracing }, save);
    const work = async () => {
      for (const [name, input] of Object.entries({
        'ping-plain': { token: 'replay' },
        'ping-with-timer': { token: 'replay', delay: '3 days' as const },
      })) {
        const handle = await env.client.workflow.start(ping, {
          taskQueue: 'ops',
          workflowId: `record-${name}`,
          args: [input],
        });
        await handle.result();
        save(name, await handle.fetchHistory());
      }
      for (const [name, { script, drive }] of Object.entries(subscriptionScenarios)) {
        const id = `00000000-0000-4000-8000-${String(Object.keys(subscriptionScenarios).indexOf(name)).padStart(12, '0')}`;
        const paymentMethodId = `pm-replay-${name}`;
        billing.script(paymentMethodId, script);
        const handle = await env.client.workflow.start(subscription, {
          taskQueue: 'billing',
          workflowId: `subscription-${id}`,
          args: [
            {
              start: {
                subscriptionId: id,
                userId: id,
                plan: 'premium-individual',
                paymentMethodId,
                trialDays: 0,
              },
            },
          ],
        });
        while ((await handle.query(subscriptionState)).status === 'pending')
          await new Promise((r) => setTimeout(r, 20));
        await drive(env, handle);
        const runs = await runHistories(env, handle.workflowId, handle.firstExecutionRunId);
        runs.forEach((history, i) => save(`subscription-${name}-run${i + 1}`, history));
      }
    };
    await maintenance.runUntil(billingWorker.runUntil(work));
  } finally {
    await env.teardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
