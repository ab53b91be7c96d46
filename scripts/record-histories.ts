import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { loadConfig } from '../lib/config';
import { setUpTracing } from '../lib/telemetry';
import { tracingWorkerOptions, WORKFLOW_INTERCEPTORS } from '../workers/interceptors';
import { ping, royaltySettlement, scheduledRoyaltySettlement, subscription } from '../workflows';
import {
  cancelSubscription,
  changePlan,
  paymentMethodUpdated,
  subscriptionState,
} from '../workflows/billing/contract';
import {
  TASK_QUEUE as ROYALTIES,
  approveSettlement,
  rejectSettlement,
  settlementProgress,
  settlementWorkflowId,
  shardWorkflowId,
  type SettlementInput,
} from '../workflows/royalties/contract';
import { fakeBilling, type Script } from '../test/helpers/billing-fakes';
import { timeSkippingEnv } from '../test/helpers/env';
import { fakeRoyalties } from '../test/helpers/royalties-fakes';

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

type Settlement = WorkflowHandle<typeof royaltySettlement>;

/** Settlement scenarios: the month's script for the fake activities, and what finance does. */
const settlementScenarios: Record<
  string,
  { month: string; rerun?: number; drive: (env: Env, h: Settlement) => Promise<unknown> }
> = {
  'approved-after-reminder': {
    month: '2025-10',
    drive: async (env, h) => {
      await until(h, 'awaiting_approval');
      await h
        .executeUpdate(approveSettlement, { args: [{ approver: 'finance-alice' }] })
        .catch(() => undefined);
      await env.sleep(3 * DAY + 3_600_000);
      await h.executeUpdate(approveSettlement, { args: [{ approver: 'finance-bob' }] });
      return h.result();
    },
  },
  'held-rejected': {
    month: '2026-01',
    drive: async (_env, h) => {
      await until(h, 'held');
      await h
        .executeUpdate(approveSettlement, { args: [{ approver: 'finance-bob' }] })
        .catch(() => undefined);
      await h.executeUpdate(rejectSettlement, { args: [{ by: 'finance-bob', reason: 'rates missing' }] });
      return h.result();
    },
  },
  verified: { month: '2026-02', rerun: 1, drive: (_env, h) => h.result() },
  canceled: {
    month: '2025-11',
    drive: async (_env, h) => {
      await until(h, 'awaiting_approval');
      await h.cancel();
      return h.result().catch(() => undefined);
    },
  },
  superseded: {
    month: '2026-04',
    drive: async (env, h) => {
      await until(h, 'awaiting_approval');
      const next = await env.client.workflow.start(royaltySettlement, {
        taskQueue: ROYALTIES,
        workflowId: settlementWorkflowId('2026-05'),
        args: [settlementInput('2026-05', 0)],
      });
      await h.result();
      await next.cancel();
      return next.result().catch(() => undefined);
    },
  },
};

const settlementInput = (month: string, rerun: number): SettlementInput => ({
  month,
  rerun,
  startedBy: 'finance-alice',
  shards: 2,
  latenessHours: 2,
  reminderDays: 3,
});

async function until(h: Settlement, status: string): Promise<void> {
  while ((await h.query(settlementProgress)).status !== status) await new Promise((r) => setTimeout(r, 20));
}

async function main(): Promise<void> {
  // Groups to record (ops, billing, royalties); all when none is named.
  const groups = process.argv.slice(2);
  const recording = (group: string) => groups.length === 0 || groups.includes(group);
  const env = await timeSkippingEnv();
  try {
    const workflowBundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../workflows'),
      workflowInterceptorModules: [WORKFLOW_INTERCEPTORS],
    });
    const tracing = tracingWorkerOptions(setUpTracing(loadConfig({}).otel, 'record-histories'));
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
    const royalties = fakeRoyalties({
      '2026-01': { exceptions: 2 },
      '2026-02': { kind: 'verification' },
      '2026-05': { supersedes: [settlementWorkflowId('2026-04')] },
    });
    const royaltiesWorker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: ROYALTIES,
      workflowBundle,
      activities: royalties.activities,
      ...tracing,
    });
    mkdirSync(out, { recursive: true });
    const work = async () => {
      if (recording('royalties')) {
        for (const [name, { month, rerun = 0, drive }] of Object.entries(settlementScenarios)) {
          const handle = await env.client.workflow.start(royaltySettlement, {
            taskQueue: ROYALTIES,
            workflowId: settlementWorkflowId(month, rerun),
            args: [settlementInput(month, rerun)],
          });
          await drive(env, handle);
          save(`royalties-settlement-${name}`, await handle.fetchHistory());
          if (name === 'approved-after-reminder') {
            const shard = env.client.workflow.getHandle(shardWorkflowId(handle.workflowId, 0));
            save('royalties-settlement-shard', await shard.fetchHistory());
          }
        }
        const scheduled = await env.client.workflow.start(scheduledRoyaltySettlement, {
          taskQueue: ROYALTIES,
          workflowId: 'royalty-settlement-scheduled-record',
          args: [{ shards: 2, latenessHours: 2, reminderDays: 3 }],
        });
        const { workflowId } = await scheduled.result();
        save('royalties-scheduled', await scheduled.fetchHistory());
        await env.client.workflow.getHandle(workflowId).cancel();
      }
      for (const [name, input] of Object.entries(
        recording('ops')
          ? {
              'ping-plain': { token: 'replay' },
              'ping-with-timer': { token: 'replay', delay: '3 days' as const },
            }
          : {},
      )) {
        const handle = await env.client.workflow.start(ping, {
          taskQueue: 'ops',
          workflowId: `record-${name}`,
          args: [input],
        });
        await handle.result();
        save(name, await handle.fetchHistory());
      }
      for (const [name, { script, drive }] of Object.entries(
        recording('billing') ? subscriptionScenarios : {},
      )) {
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
    await maintenance.runUntil(billingWorker.runUntil(royaltiesWorker.runUntil(work)));
  } finally {
    await env.teardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
