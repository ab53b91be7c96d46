import {
  CancellationScope,
  isCancellation,
  proxyActivities,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ComplianceActivities } from '../../activities/compliance';
import { dueAt } from '../../domain/compliance/deadline';
import { SEARCH, type ExportInput, type ExportResult } from './contract';
import { RequestRun } from './request-run';

/**
 * GDPR export (Art. 15 access, Art. 20 portability), ID `gdpr-export-<requestId>`, queue `compliance`:
 * record the request, gather everything about the person from every store into a zip streamed into the
 * `exports` bucket (a link valid 7 days is made when asked for), record it with its SHA-256. A person
 * already erased has nothing left to export, and the request says so.
 */

const retry = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '2 minutes' };
const book = proxyActivities<ComplianceActivities>({ startToCloseTimeout: '2 minutes', retry });
const archive = proxyActivities<ComplianceActivities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '30 seconds',
  retry,
});

export async function gdprExport(input: ExportInput): Promise<ExportResult> {
  const { requestId, userId } = input;
  const { workflowId } = workflowInfo();
  const run = new RequestRun('export', requestId);
  const receivedAt = Date.now();
  const recorded = await book.recordRequest({
    requestId,
    userId,
    kind: 'export',
    requester: input.requester,
    reason: null,
    workflowId,
    receivedAt,
    dueAt: dueAt(receivedAt),
  });
  Object.assign(run, {
    receivedAt: recorded.receivedAt,
    dueAt: recorded.dueAt,
    extendedDueAt: recorded.extendedDueAt,
  });
  const end = (status: string) => {
    run.finished = true;
    upsertSearchAttributes([{ key: SEARCH.status, value: status }]);
  };
  if (recorded.joined) {
    end('joined');
    return { requestId, outcome: 'joined', joined: recorded.joined };
  }
  if (!recorded.known) {
    end('failed');
    return { requestId, outcome: 'unknown_user' };
  }
  if (recorded.erased) {
    await book.completeRequest({
      requestId,
      workflowId,
      kind: 'export',
      status: 'completed',
      outcome: 'nothing_left',
    });
    end('completed');
    return { requestId, outcome: 'nothing_left' };
  }

  try {
    return await run.underDeadline(async () => {
      await run.setStatus('in_progress');
      for (const s of ['postgres', 'clickhouse', 'opensearch', 'minio'] as const) run.store(s, 'working');
      const made = await archive.buildExport({ requestId, userId, generatedAt: Date.now() });
      for (const s of ['postgres', 'clickhouse', 'opensearch', 'minio'] as const) run.store(s, 'done');
      await book.completeRequest({
        requestId,
        workflowId,
        kind: 'export',
        status: 'completed',
        outcome: 'exported',
        archive: { key: made.key, sha256: made.sha256, bytes: made.bytes },
      });
      await run.setStatus('completed');
      return { requestId, outcome: 'exported', exportKey: made.key, bytes: made.bytes, sha256: made.sha256 };
    });
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // Canceled (by an operator, or by an erasure of the same person): recorded, no archive.
    await CancellationScope.nonCancellable(() =>
      book.completeRequest({
        requestId,
        workflowId,
        kind: 'export',
        status: 'failed',
        outcome: 'canceled',
        failureReason: 'Canceled before the archive was made.',
      }),
    );
    end('failed');
    return { requestId, outcome: 'canceled' };
  }
}
