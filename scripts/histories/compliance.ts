import type { HistoryAndWorkflowId } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { fakeCompliance } from '../../test/helpers/compliance-fakes';
import { gdprErasure, gdprExport } from '../../workflows';
import {
  extendDeadline,
  gdprErasureWorkflowId,
  gdprExportWorkflowId,
  SEARCH,
  TASK_QUEUE,
} from '../../workflows/compliance/contract';

const DAY = 86_400_000;
type History = NonNullable<HistoryAndWorkflowId['history']>;

/**
 * The GDPR scenarios recorded for replay: an erasure whose ClickHouse verification finds residue once, one
 * escalated at day 25 while a store keeps residue, one extended, an export, and an export after erasure.
 */
export async function recordComplianceHistories(
  env: TestWorkflowEnvironment,
  options: Pick<WorkerOptions, 'workflowBundle' | 'interceptors' | 'sinks'>,
  save: (name: string, history: History) => void,
): Promise<void> {
  const { IndexedValueType } = temporal.api.enums.v1;
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      Object.values(SEARCH).map((k) => [
        k.name,
        k.type === 'BOOL'
          ? IndexedValueType.INDEXED_VALUE_TYPE_BOOL
          : IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
      ]),
    ),
  });
  const scenarios: Record<
    string,
    {
      fake: ReturnType<typeof fakeCompliance>;
      kind: 'erasure' | 'export';
      drive?: (h: () => Promise<void>) => Promise<void>;
    }
  > = {};
  const residueOnce = fakeCompliance();
  residueOnce.residue('clickhouse', 1);
  scenarios['gdpr-erasure-residue-once'] = { fake: residueOnce, kind: 'erasure' };
  const escalated = fakeCompliance();
  escalated.hold('opensearch');
  scenarios['gdpr-erasure-escalated'] = { fake: escalated, kind: 'erasure' };
  const extended = fakeCompliance();
  extended.hold('minio');
  scenarios['gdpr-erasure-extended'] = { fake: extended, kind: 'erasure' };
  scenarios['gdpr-export'] = { fake: fakeCompliance(), kind: 'export' };
  scenarios['gdpr-export-nothing-left'] = { fake: fakeCompliance({ erased: true }), kind: 'export' };

  for (const [name, { fake, kind }] of Object.entries(scenarios)) {
    const n = Object.keys(scenarios).indexOf(name);
    const requestId = `00000000-0000-4000-9000-${String(n).padStart(12, '0')}`;
    const userId = `00000000-0000-4000-a000-${String(n).padStart(12, '0')}`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: TASK_QUEUE,
      activities: fake.activities,
      ...options,
    });
    await worker.runUntil(async () => {
      const common = {
        taskQueue: TASK_QUEUE,
        typedSearchAttributes: [
          { key: SEARCH.requestId, value: requestId },
          { key: SEARCH.userId, value: userId },
        ],
      };
      const handle =
        kind === 'erasure'
          ? await env.client.workflow.start(gdprErasure, {
              ...common,
              workflowId: gdprErasureWorkflowId(requestId),
              args: [{ requestId, userId, requester: 'dpo-replay', reason: 'objection' }],
            })
          : await env.client.workflow.start(gdprExport, {
              ...common,
              workflowId: gdprExportWorkflowId(requestId),
              args: [{ requestId, userId, requester: userId }],
            });
      if (name === 'gdpr-erasure-escalated') {
        await env.sleep(26 * DAY);
        fake.release();
      }
      if (name === 'gdpr-erasure-extended') {
        await env.sleep(10 * DAY);
        await handle.executeUpdate(extendDeadline, {
          args: [{ months: 2, reason: 'complexity', by: 'dpo-replay' }],
        });
        await env.sleep(5 * DAY);
        fake.release();
      }
      await handle.result();
      save(name, await handle.fetchHistory());
    });
  }
}
