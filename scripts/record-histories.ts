import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { loadConfig } from '../lib/config';
import { setUpTracing } from '../lib/telemetry';
import { tracingWorkerOptions, WORKFLOW_INTERCEPTORS } from '../workers/interceptors';
import { ping, reindexSearch, subscription, syncPlayCounts, trackChange, trackIngestion } from '../workflows';
import {
  ingestionProgress,
  MEDIA_TASK_QUEUE,
  TASK_QUEUE as CATALOG_QUEUE,
  type TrackIngestionInput,
} from '../workflows/catalog/contract';
import { fakeCatalog, type CatalogScript } from '../test/helpers/catalog-fakes';
import { timeSkippingEnv } from '../test/helpers/env';
import {
  cancelSubscription,
  changePlan,
  paymentMethodUpdated,
  subscriptionState,
} from '../workflows/billing/contract';
import { fakeBilling, type Script } from '../test/helpers/billing-fakes';

/**
 * Records the event histories that the replay tests replay on every change (test/replay/histories).
 * Run it when a workflow changes on purpose — behind patched() for runs already in flight — and commit
 * the new files beside the old ones: old histories must keep replaying.
 */
const out = path.join(__dirname, '..', 'test', 'replay', 'histories');
/** `npm run record:histories -- catalog` records only the scenarios whose names start with `catalog`. */
const only = process.argv[2] ?? '';
const wanted = (name: string) => name.startsWith(only);
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

async function main(): Promise<void> {
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
    const catalog = fakeCatalog();
    const catalogWorkers = await Promise.all(
      [CATALOG_QUEUE, MEDIA_TASK_QUEUE].map((taskQueue) =>
        Worker.create({
          connection: env.nativeConnection,
          taskQueue,
          workflowBundle,
          activities: catalog.activities,
          maxHeartbeatThrottleInterval: '100ms',
          ...tracing,
        }),
      ),
    );
    mkdirSync(out, { recursive: true });
    const work = async () => {
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
      for (const [name, { script, drive }] of Object.entries(subscriptionScenarios)) {
        if (!wanted(`subscription-${name}`)) continue;
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
    const catalogWork = async () => {
      for (const [n, [name, scenario]] of Object.entries(ingestionScenarios).entries()) {
        if (!wanted(`catalog-ingestion-${name}`)) continue;
        catalog.script(scenario.script);
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
      catalog.script({});
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
        (catalogWorkers[0] as Worker).runUntil(
          (catalogWorkers[1] as Worker).runUntil(async () => {
            await work();
            await catalogWork();
          }),
        ),
      ),
    );
  } finally {
    await env.teardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
