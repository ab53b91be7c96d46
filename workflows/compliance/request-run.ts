import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  metricMeter,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ComplianceActivities } from '../../activities/compliance';
import type { RequestKind } from '../../activities/compliance/requests';
import { escalateAt, extendedDueAt } from '../../domain/compliance/deadline';
import {
  EXTENSION_REASONS,
  extendDeadline,
  GdprFailure,
  requestProgress,
  SEARCH,
  type ErasureStore,
  type RequestProgress,
  type RequestStatus,
} from './contract';

/** Bookkeeping steps: short PostgreSQL writes, retried until the database answers. */
const book = proxyActivities<ComplianceActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

/**
 * What erasure and export share: the request's status (kept in PostgreSQL and in the CadenzaStatus
 * search attribute), per-store progress for the live query, and the legal clock — escalation at day 25
 * (audit entry, metric, CadenzaEscalated) and the Art. 12(3) extension update, which moves it.
 */
export class RequestRun {
  status: RequestStatus = 'received';
  readonly stores: RequestProgress['stores'] = {};
  escalated = false;
  finished = false;
  receivedAt = 0;
  dueAt = 0;
  extendedDueAt: number | null = null;
  private escalatedFor = 0;

  constructor(
    readonly kind: RequestKind,
    readonly requestId: string,
  ) {
    setHandler(requestProgress, () => ({
      requestId: this.requestId,
      status: this.status,
      stores: { ...this.stores },
      dueAt: this.dueAt ? new Date(this.extendedDueAt ?? this.dueAt).toISOString() : null,
      escalated: this.escalated,
    }));
    setHandler(
      extendDeadline,
      async ({ months, reason, by }) => {
        const next = extendedDueAt(this.dueAt, months, this.extendedDueAt !== null);
        if ('refused' in next)
          throw ApplicationFailure.nonRetryable(next.refused, GdprFailure.ExtensionRefused);
        await book.extendRequest({
          requestId: this.requestId,
          workflowId: workflowInfo().workflowId,
          kind: this.kind,
          extendedDueAt: next.dueMs,
          reason,
          by,
        });
        this.extendedDueAt = next.dueMs;
        return { dueAt: new Date(next.dueMs).toISOString() };
      },
      {
        validator: ({ months, reason }) => {
          if (this.finished || !this.dueAt)
            throw ApplicationFailure.nonRetryable('The request is not open.', GdprFailure.ExtensionRefused);
          if (!(EXTENSION_REASONS as readonly string[]).includes(reason))
            throw ApplicationFailure.nonRetryable(
              `reason must be one of ${EXTENSION_REASONS.join(', ')}`,
              GdprFailure.ExtensionRefused,
            );
          if (!Number.isInteger(months))
            throw ApplicationFailure.nonRetryable(
              'months must be a whole number.',
              GdprFailure.ExtensionRefused,
            );
        },
      },
    );
  }

  store(store: ErasureStore, state: NonNullable<RequestProgress['stores'][ErasureStore]>): void {
    this.stores[store] = state;
  }

  /** Status forward, in PostgreSQL and the search attribute; escalated stays until the request ends. */
  async setStatus(status: RequestStatus): Promise<void> {
    const shown =
      this.escalated && (status === 'in_progress' || status === 'verifying') ? 'escalated' : status;
    this.status = shown;
    upsertSearchAttributes([{ key: SEARCH.status, value: shown }]);
    if (status === 'completed' || status === 'failed') return; // written by completeRequest
    await book.setRequestStatus({ requestId: this.requestId, status });
  }

  /**
   * Runs `work` under the legal clock: at day 25 (or five days before an extended due date) an open request
   * escalates. Returns when the work has ended.
   */
  async underDeadline<T>(work: () => Promise<T>): Promise<T> {
    const watching = this.watch().catch((err: unknown) => {
      if (!isCancellation(err)) throw err;
    });
    try {
      return await work();
    } finally {
      this.finished = true;
      await CancellationScope.nonCancellable(() => watching);
    }
  }

  private async watch(): Promise<void> {
    while (!this.finished) {
      const extended = this.extendedDueAt;
      const at = escalateAt(this.receivedAt, extended);
      const wait = at - Date.now();
      const moved = () => this.finished || this.extendedDueAt !== extended;
      if (wait > 0 && (await condition(moved, wait))) continue;
      if (this.finished) return;
      if (this.escalatedFor !== at) {
        this.escalatedFor = at;
        this.escalated = true;
        if (this.status !== 'completed' && this.status !== 'failed') this.status = 'escalated';
        upsertSearchAttributes([
          { key: SEARCH.escalated, value: true },
          { key: SEARCH.status, value: this.status },
        ]);
        metricMeter
          .createCounter('cadenza_gdpr_escalations', 'requests', 'GDPR requests not answered by day 25')
          .add(1, { kind: this.kind });
        await book.escalateRequest({
          requestId: this.requestId,
          workflowId: workflowInfo().workflowId,
          kind: this.kind,
          dueAt: this.extendedDueAt ?? this.dueAt,
        });
      }
      await condition(moved);
    }
  }
}
