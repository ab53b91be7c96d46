import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { loadConfig } from '../lib/config';
import { setUpTracing } from '../lib/telemetry';
import { tracingWorkerOptions, WORKFLOW_INTERCEPTORS } from '../workers/interceptors';
import {
  ping,
  reindexSearch,
  royaltySettlement,
  scheduledRoyaltySettlement,
  subscription,
  syncPlayCounts,
  trackChange,
  trackIngestion,
} from '../workflows';
import {
  ingestionProgress,
  MEDIA_TASK_QUEUE,
  TASK_QUEUE as CATALOG_QUEUE,
  type TrackIngestionInput,
} from '../workflows/catalog/contract';
import { fakeCatalog, type CatalogScript } from '../test/helpers/catalog-fakes';
import {
  cancelSubscription,
  changePlan,
  paymentMethodUpdated,
  subscriptionState,
  type NewSubscription,
} from '../workflows/billing/contract';
import { BUILT_IN_PLANS, PlanCatalog } from '../domain/billing/plans';
import type { PlanTerms } from '../domain/billing/terms';
import { fakeBilling, type Script } from '../test/helpers/billing-fakes';
import { recordComplianceHistories } from './histories/compliance';
import { fakeOps, type OpsKnobs } from '../test/helpers/ops-fakes';
import {
  backupStores,
  dimensionRefresh,
  partitionMaintenance,
  refreshRecommendations,
  restoreDrill,
  scheduledBackup,
} from '../workflows';
import {
  TASK_QUEUE as ROYALTIES,
  approveSettlement,
  rejectSettlement,
  settlementProgress,
  settlementWorkflowId,
  shardWorkflowId,
  type SettlementInput,
} from '../workflows/royalties/contract';
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

/** `--only <prefix>` records only the scenarios whose file names start with it (e.g. `--only ops-`). */
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const wanted = (name: string) => !only || name.startsWith(only);

/** The ops jobs' scenarios: mocked activities (knobs) and a run to drive to its end. */
const opsScenarios: Record<string, { knobs: OpsKnobs; run: (env: Env) => Promise<WorkflowHandle> }> = {
  'ops-dimension-refresh': {
    knobs: {},
    run: (env) =>
      env.client.workflow.start(dimensionRefresh, {
        taskQueue: 'ops',
        workflowId: 'dimension-refresh-2026-01-04T0305Z',
        args: [{ overlapSeconds: 600 }],
      }),
  },
  'ops-partition-maintenance': {
    knobs: {},
    run: (env) =>
      env.client.workflow.start(partitionMaintenance, {
        taskQueue: 'ops',
        workflowId: 'partition-maintenance-2026-01-04T0115Z',
      }),
  },
  'ops-backup': {
    knobs: {},
    run: (env) =>
      env.client.workflow.start(backupStores, {
        taskQueue: 'ops',
        workflowId: 'backup-2026-01-04T0300Z',
        args: [{ backupId: '2026-01-04T0300Z', retentionDays: 14, keepAtLeast: 3 }],
      }),
  },
  'ops-backup-store-down': {
    knobs: { fail: 'backupOpenSearch' },
    run: (env) =>
      env.client.workflow.start(backupStores, {
        taskQueue: 'ops',
        workflowId: 'backup-2026-01-05T0300Z',
        args: [{ backupId: '2026-01-05T0300Z', retentionDays: 14, keepAtLeast: 3 }],
      }),
  },
  'ops-backup-canceled': {
    knobs: { hang: 'backupPostgres' },
    run: async (env) => {
      const h = await env.client.workflow.start(backupStores, {
        taskQueue: 'ops',
        workflowId: 'backup-2026-01-06T0300Z',
        args: [{ backupId: '2026-01-06T0300Z', retentionDays: 14, keepAtLeast: 3 }],
      });
      await new Promise((r) => setTimeout(r, 1500));
      await h.cancel();
      return h;
    },
  },
  'ops-restore-drill-passed': {
    knobs: {},
    run: (env) =>
      env.client.workflow.start(restoreDrill, {
        taskQueue: 'ops',
        workflowId: 'restore-drill-2026-01-04T0500Z',
        args: [{ drillId: 'restore-drill-2026-01-04T0500Z' }],
      }),
  },
  'ops-restore-drill-failed': {
    knobs: {
      drillFailures: [
        { store: 'postgres', object: 'public.users', reason: '2 rows restored, the source had 3' },
      ],
    },
    run: (env) =>
      env.client.workflow.start(restoreDrill, {
        taskQueue: 'ops',
        workflowId: 'restore-drill-2026-01-11T0500Z',
        args: [{ drillId: 'restore-drill-2026-01-11T0500Z' }],
      }),
  },
  'ops-restore-drill-canceled': {
    knobs: { hang: 'restorePostgresBackup' },
    run: async (env) => {
      const h = await env.client.workflow.start(restoreDrill, {
        taskQueue: 'ops',
        workflowId: 'restore-drill-2026-01-18T0500Z',
        args: [{ drillId: 'restore-drill-2026-01-18T0500Z' }],
      });
      await new Promise((r) => setTimeout(r, 1500));
      await h.cancel();
      return h;
    },
  },
  'ops-recommendations': {
    knobs: {},
    run: (env) =>
      env.client.workflow.start(refreshRecommendations, {
        taskQueue: 'ops',
        workflowId: 'recommendations-2026-01-04T0430Z',
        args: [{ windowDays: 30, perUser: 20, neighbors: 20, shards: 4 }],
      }),
  },
  'ops-scheduled-backup': {
    knobs: {},
    run: (env) =>
      env.client.workflow.start(scheduledBackup, {
        taskQueue: 'ops',
        workflowId: 'ops-backup-scheduled-2026-01-07T03:00:00Z',
        args: [{ retentionDays: 14, keepAtLeast: 3 }],
      }),
  },
};
type Sub = WorkflowHandle<typeof subscription>;

// The built-in plans and a free one; recorded starts carry their quoted terms, as the API's do.
const individual = BUILT_IN_PLANS[0] as PlanTerms;
const plans: PlanTerms[] = [
  ...BUILT_IN_PLANS,
  { ...individual, plan: 'free-tier', priceMinor: 0, trialMs: 0 },
];
const catalog = new PlanCatalog(plans);
const billing = fakeBilling(plans);

/** A charge the script holds in flight, once it is there. */
async function heldCharge(h: Sub): Promise<string> {
  const id = h.workflowId.replace('subscription-', '');
  for (;;) {
    const [key] = billing.holding(id);
    if (key) return key;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Subscription scenarios: a payment-method script, the start, and what happens to the run. */
const subscriptionScenarios: Record<
  string,
  { script: Script; start?: Partial<NewSubscription>; drive: (env: Env, h: Sub) => Promise<void> }
> = {
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
  // Code version 5 on: an operator's cancellation of the run, updates while a charge is in flight,
  // provider refusals, unpaid trial ends, catalog price changes, free plans.
  'operator-cancel-trial': {
    script: () => 'succeeded',
    start: { trialDays: undefined },
    drive: async (_env, h) => {
      await h.cancel();
      await h.result().catch(() => undefined);
    },
  },
  'operator-cancel-in-flight': {
    script: (n) => (n === 1 ? 'hold' : 'succeeded'),
    drive: async (env, h) => {
      await untilDue(env, h, 0);
      const key = await heldCharge(h);
      await h.cancel();
      while ((await h.query(subscriptionState)).status !== 'canceled')
        await new Promise((r) => setTimeout(r, 20));
      billing.release(key);
      await h.result().catch(() => undefined);
    },
  },
  'updates-in-flight': {
    script: (n) => (n === 1 ? 'hold' : 'succeeded'),
    drive: async (env, h) => {
      await untilDue(env, h, 0);
      const key = await heldCharge(h);
      await h.executeUpdate(changePlan, { args: [{ plan: 'premium-family' }] }).catch(() => undefined);
      await h.executeUpdate(paymentMethodUpdated, { args: [{ paymentMethodId: 'pm-replay-new' }] });
      await h.executeUpdate(cancelSubscription, { args: [{ atPeriodEnd: false }] });
      billing.release(key);
      await h.result();
    },
  },
  'provider-refused': {
    script: (n) => (n === 1 ? 'refused' : 'succeeded'),
    drive: async (env, h) => {
      await untilDue(env, h, 60_000);
      await h.executeUpdate(paymentMethodUpdated, { args: [{ paymentMethodId: 'pm-replay-new' }] });
      await env.sleep(60_000);
    },
  },
  'trial-end-unpaid': {
    script: (n) => (n === 0 ? 'soft' : 'succeeded'),
    start: { trialDays: undefined },
    drive: (env) => env.sleep(32 * DAY),
  },
  'price-change': {
    script: () => 'succeeded',
    drive: async (env) => {
      billing.setPlans(plans.map((p) => (p.plan === individual.plan ? { ...p, priceMinor: 1299 } : p)));
      await env.sleep(62 * DAY);
      billing.setPlans(plans);
    },
  },
  'free-plan': {
    script: () => 'succeeded',
    start: { plan: 'free-tier' },
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

/** Catalog scenarios: the fakes' script and what happens to the ingestion run. */
const ingestionScenarios: Record<string, { script: CatalogScript; cover?: boolean; cancel?: boolean }> = {
  published: { script: {}, cover: true },
  'rejected-too-short': { script: { inspection: { durationMs: 12_000 } } },
  duplicate: { script: { duplicateOf: '00000000-0000-4000-8000-00000000dddd' } },
  'saga-after-promotion': {
    script: { refuse: { activity: 'writeCatalog', failure: 'IsrcInUse', message: 'The ISRC is taken' } },
  },
  'canceled-mid-transcode': { script: { transcodeUntilCancelled: true }, cancel: true },
};

function ingestionInput(n: number): TrackIngestionInput {
  const id = `00000000-0000-4000-8000-${String(100 + n).padStart(12, '0')}`;
  return {
    trackId: id,
    uploadId: id,
    artistId: '00000000-0000-4000-8000-00000000aaaa',
    submission: {
      title: 'Replay',
      album: { title: 'Replay', upc: '812345678905', releaseDate: '2025-01-01' },
      isrc: 'DEA012500001',
      explicit: false,
      genres: ['pop'],
    },
  };
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
  const env = await timeSkippingEnv();
  try {
    const workflowBundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../workflows'),
      workflowInterceptorModules: [WORKFLOW_INTERCEPTORS],
    });
    const tracing = tracingWorkerOptions(setUpTracing(loadConfig({}).otel, 'record-histories'));
    mkdirSync(out, { recursive: true });
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
    if (wanted('gdpr-')) await recordComplianceHistories(env, { workflowBundle, ...tracing }, save);
    const catalogFake = fakeCatalog();
    const catalogWorkers = await Promise.all(
      [CATALOG_QUEUE, MEDIA_TASK_QUEUE].map((taskQueue) =>
        Worker.create({
          connection: env.nativeConnection,
          taskQueue,
          workflowBundle,
          activities: catalogFake.activities,
          maxHeartbeatThrottleInterval: '100ms',
          ...tracing,
        }),
      ),
    );
    const work = async () => {
      if (wanted('royalties-')) {
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
      for (const [name, input] of Object.entries({
        'ping-plain': { token: 'replay' },
        'ping-with-timer': { token: 'replay', delay: '3 days' as const },
      })) {
        if (!wanted(name)) continue;
        const handle = await env.client.workflow.start(ping, {
          taskQueue: 'ops',
          workflowId: `record-${name}`,
          args: [input],
        });
        await handle.result();
        save(name, await handle.fetchHistory());
      }
      for (const [name, { script, start, drive }] of Object.entries(subscriptionScenarios)) {
        if (!wanted(`subscription-${name}`)) continue;
        const id = `00000000-0000-4000-8000-${String(Object.keys(subscriptionScenarios).indexOf(name)).padStart(12, '0')}`;
        const paymentMethodId = `pm-replay-${name}`;
        billing.script(paymentMethodId, script);
        const plan = start?.plan ?? 'premium-individual';
        const handle = await env.client.workflow.start(subscription, {
          taskQueue: 'billing',
          workflowId: `subscription-${id}`,
          args: [
            {
              start: {
                subscriptionId: id,
                userId: id,
                plan,
                paymentMethodId,
                trialDays: 0,
                terms: catalog.get(plan),
                ...start,
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
    const catalogWork = async () => {
      for (const [n, [name, scenario]] of Object.entries(ingestionScenarios).entries()) {
        if (!wanted(`catalog-ingestion-${name}`)) continue;
        catalogFake.script(scenario.script);
        const input = {
          ...ingestionInput(n),
          ...(scenario.cover ? { coverUploadId: ingestionInput(50 + n).uploadId } : {}),
        };
        const handle = await env.client.workflow.start(trackIngestion, {
          taskQueue: CATALOG_QUEUE,
          workflowId: `track-ingestion-${input.uploadId}`,
          args: [input],
        });
        if (scenario.cancel) {
          while ((await handle.query(ingestionProgress)).step !== 'transcode')
            await new Promise((r) => setTimeout(r, 20));
          await handle.cancel();
        }
        await handle.result().catch(() => undefined);
        save(`catalog-ingestion-${name}`, await handle.fetchHistory());
      }
      catalogFake.script({});
      const others = [
        [
          'catalog-change-takedown',
          trackChange,
          [{ trackId: ingestionInput(0).trackId, change: { kind: 'takedown', reason: 'copyright' } }],
        ],
        [
          'catalog-change-edit',
          trackChange,
          [
            {
              trackId: ingestionInput(0).trackId,
              change: { kind: 'edit', edit: { title: 'Replayed', genres: ['jazz'] } },
            },
          ],
        ],
        ['catalog-play-count-sync', syncPlayCounts, []],
        ['catalog-reindex-v2', reindexSearch, [{ version: 2 }]],
      ] as const;
      for (const [name, workflow, args] of others) {
        if (!wanted(name)) continue;
        const handle = await env.client.workflow.start(workflow as typeof trackChange, {
          taskQueue: CATALOG_QUEUE,
          workflowId: `record-${name}`,
          args: args as unknown as Parameters<typeof trackChange>,
        });
        await handle.result();
        save(name, await handle.fetchHistory());
      }
    };
    await maintenance.runUntil(
      billingWorker.runUntil(
        royaltiesWorker.runUntil(
          (catalogWorkers[0] as Worker).runUntil(
            (catalogWorkers[1] as Worker).runUntil(async () => {
              await work();
              await catalogWork();
            }),
          ),
        ),
      ),
    );
    for (const [name, scenario] of Object.entries(opsScenarios)) {
      if (!wanted(name)) continue;
      const ops = await Worker.create({
        connection: env.nativeConnection,
        taskQueue: 'ops',
        workflowBundle,
        activities: fakeOps(scenario.knobs).activities,
        ...tracing,
      });
      await ops.runUntil(async () => {
        const handle = await scenario.run(env);
        await handle.result().catch(() => undefined); // failed and canceled runs are scenarios too
        save(name, await handle.fetchHistory());
        // A launcher's child has a history of its own.
        const child = (await handle.result().catch(() => undefined)) as { workflowId?: string } | undefined;
        if (child?.workflowId)
          save(`${name}-child`, await env.client.workflow.getHandle(child.workflowId).fetchHistory());
      });
    }
  } finally {
    await env.teardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
