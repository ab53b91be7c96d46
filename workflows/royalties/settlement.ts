import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  executeChild,
  getExternalWorkflowHandle,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { RoyaltiesActivities } from '../../activities/royalties';
import {
  RoyaltiesFailure,
  SEARCH,
  TASK_QUEUE,
  approveSettlement,
  rejectSettlement,
  settlementProgress,
  settlementWorkflowId,
  shardWorkflowId,
  supersedeSettlement,
  type Decision,
  type FrozenRun,
  type Phase,
  type RunStatus,
  type SettlementInput,
  type SettlementProgress,
  type SettlementResult,
  type ShardInput,
  type ShardResult,
} from './contract';

/**
 * The monthly royalty settlement (ID `royalty-settlement-<month>[-rerun-<n>]`, queue `royalties`):
 * freeze the pins → wait for the cut-off → snapshot ClickHouse's plays into PostgreSQL (a verification
 * re-run reads the verified run's snapshot and re-aggregates only to compare) → payouts per artist shard,
 * one child workflow each → statement to the write-once bucket with its SHA-256 → held, verified, or
 * waiting for a finance user other than the starter to approve or reject, with a reminder every N days.
 * A cancellation from Temporal is recorded as the run's end (canceled), never left half-done.
 */

// Short steps; a cancellation waits for the step in flight, so a freeze never commits after the run ended.
const steps = proxyActivities<RoyaltiesActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});
// The month's aggregation, its COPY and the statement stream run for minutes at scale: they heartbeat
// every 5 s, so a worker killed mid-step is noticed within 30 s and the step runs again elsewhere.
const bulk = proxyActivities<RoyaltiesActivities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes' },
});

const refuse = (type: RoyaltiesFailure, message: string) =>
  ApplicationFailure.create({ type, message, nonRetryable: true });

const DAY_MS = 86_400_000;
/** Ticks stamped just before the cut-off are visible a moment after it. */
const CUTOFF_SETTLE_MS = 60_000;

/** The run's state, its handlers and its query, in one place. */
class Settlement {
  runId: string | null = null;
  frozen: FrozenRun | null = null;
  status: RunStatus | 'starting' = 'starting';
  phase: Phase = 'freezing';
  snapshotLines: number | null = null;
  shardsDone = 0;
  statementSha256: string | null = null;
  exceptions: number | null = null;
  escalated = false;
  deciding = false;
  decision: Decision | null = null;
  supersededBy: string | null = null;

  constructor(readonly input: SettlementInput) {
    setHandler(settlementProgress, () => this.progress());
    // A decision may arrive the moment the run's row says awaiting_approval, before this workflow has taken
    // in the step that wrote it: the validator lets a computing run's decision in, and the handler waits
    // for the run to catch up before it checks again.
    setHandler(approveSettlement, ({ approver }) => this.decide('approve', approver), {
      validator: ({ approver }) => this.checkDecision('approve', approver, { computing: 'accept' }),
    });
    setHandler(rejectSettlement, ({ by, reason }) => this.decide('reject', by, reason), {
      validator: ({ by }) => this.checkDecision('reject', by, { computing: 'accept' }),
    });
    setHandler(supersedeSettlement, ({ byRunId }) => {
      this.supersededBy = byRunId;
    });
  }

  progress(): SettlementProgress {
    return {
      month: this.input.month,
      rerun: this.input.rerun,
      runId: this.runId,
      kind: this.frozen?.kind ?? null,
      status: this.status,
      phase: this.phase,
      snapshotLines: this.snapshotLines,
      shardsDone: this.shardsDone,
      shardsTotal: this.input.shards,
      statementSha256: this.statementSha256,
      exceptions: this.exceptions,
      escalated: this.escalated,
    };
  }

  enter(phase: Phase, status?: RunStatus): void {
    this.phase = phase;
    if (status && status !== this.status) {
      this.status = status;
      upsertSearchAttributes([{ key: SEARCH.status, value: status }]);
    }
    setCurrentDetails(
      `**${this.input.month}** · ${this.frozen?.kind ?? 'settlement'} · ${phase} · ${this.status}`,
    );
  }

  /** Refusals the API turns into problems; the DB decides again inside the activity. */
  checkDecision(
    kind: 'approve' | 'reject',
    by: string,
    opts: { computing: 'accept' | 'refuse' } = { computing: 'refuse' },
  ): void {
    if (!by) throw refuse(RoyaltiesFailure.NotAwaitingApproval, 'a decision names who takes it');
    if (this.deciding || this.decision)
      throw refuse(RoyaltiesFailure.NotAwaitingApproval, `run ${this.runId} is already decided`);
    if (opts.computing === 'accept' && this.computing()) return;
    if (kind === 'approve' && this.status === 'held')
      throw refuse(
        RoyaltiesFailure.RunHeld,
        `run ${this.runId} is held by ${this.exceptions} exceptions: fix the data and re-run the month, or reject it`,
      );
    const open = kind === 'approve' ? ['awaiting_approval'] : ['awaiting_approval', 'held'];
    if (!open.includes(this.status))
      throw refuse(
        RoyaltiesFailure.NotAwaitingApproval,
        `run ${this.runId ?? '(not frozen)'} is ${this.status}`,
      );
    if (kind === 'approve' && by === this.input.startedBy)
      throw refuse(
        RoyaltiesFailure.SameApprover,
        'separation of duties: a run is approved by a finance user other than the one who started it',
      );
  }

  computing(): boolean {
    return this.status === 'starting' || this.status === 'running';
  }

  async decide(kind: 'approve' | 'reject', by: string, reason?: string): Promise<Decision> {
    await condition(() => !this.computing());
    this.checkDecision(kind, by);
    this.deciding = true;
    try {
      const outcome = await steps.decideSettlement({
        runId: this.runId as string,
        decision: kind,
        by,
        reason,
      });
      if ('refused' in outcome) throw refuse(outcome.refused, outcome.reason);
      this.decision = outcome;
      return outcome;
    } finally {
      this.deciding = false;
    }
  }
}

export async function royaltySettlement(input: SettlementInput): Promise<SettlementResult> {
  const s = new Settlement(input);
  const workflowId = workflowInfo().workflowId;
  upsertSearchAttributes([
    { key: SEARCH.month, value: input.month },
    { key: SEARCH.status, value: 'running' },
  ]);
  const result = (
    status: SettlementResult['status'],
    reason: string | null = null,
    reproduced = null as boolean | null,
  ) => ({
    month: input.month,
    runId: s.runId,
    kind: s.frozen?.kind ?? null,
    status,
    statementSha256: s.statementSha256,
    reproduced,
    reason,
  });
  try {
    s.enter('freezing');
    const frozen = await steps.freezeSettlement({ ...input, workflowId });
    if ('refused' in frozen) {
      s.enter('closed');
      return result('refused', frozen.reason);
    }
    s.frozen = frozen;
    s.runId = frozen.runId;
    s.enter('freezing', 'running');
    for (const other of frozen.supersededWorkflowIds) {
      // The replaced run's workflow closes itself; one that already ended has nothing to do.
      await getExternalWorkflowHandle(other)
        .signal(supersedeSettlement, { byRunId: frozen.runId })
        .catch(() => undefined);
    }

    const untilCutoff = Date.parse(frozen.pins.ingestionCutoff) + CUTOFF_SETTLE_MS - Date.now();
    if (untilCutoff > 0) {
      s.enter('waiting_for_cutoff');
      await sleep(untilCutoff);
    }

    s.enter('snapshot');
    const compared =
      frozen.kind === 'verification' ? bulk.compareWithClickHouse(frozen.runId) : Promise.resolve(null);
    if (frozen.kind !== 'verification') s.snapshotLines = (await bulk.snapshotPlays(frozen.runId)).lines;

    s.enter('payouts');
    const shards: Promise<ShardResult>[] = [];
    for (let shard = 0; shard < input.shards; shard++) {
      const shardInput: ShardInput = {
        runId: frozen.runId,
        snapshotRunId: frozen.snapshotRunId,
        shard,
        shards: input.shards,
      };
      shards.push(
        executeChild(royaltySettlementShard, {
          // From the business key (the run's own ID in production; replays give histories other IDs).
          workflowId: shardWorkflowId(settlementWorkflowId(input.month, input.rerun), shard),
          taskQueue: TASK_QUEUE,
          args: [shardInput],
        }).then((r) => {
          s.shardsDone++;
          return r;
        }),
      );
    }
    await Promise.all(shards);
    await compared;

    s.enter('statement');
    s.statementSha256 = (await bulk.writeStatement(frozen.runId)).sha256;
    const concluded = await steps.concludeSettlement(frozen.runId);
    s.exceptions = concluded.exceptions;
    if (concluded.status === 'verified') {
      s.enter('closed', 'verified');
      return result('verified', null, concluded.reproduced);
    }
    s.enter('deciding', concluded.status);

    for (let reminder = 1; !s.decision && !s.supersededBy; reminder++) {
      const answered = await condition(
        () => s.decision !== null || s.supersededBy !== null,
        input.reminderDays * DAY_MS,
      );
      if (answered) break;
      await steps.remindApprovers({ runId: frozen.runId, reminder });
      s.escalated = true;
      upsertSearchAttributes([{ key: SEARCH.escalated, value: true }]);
    }
    await condition(allHandlersFinished);
    if (s.decision) {
      s.enter('closed', s.decision.status);
      return result(s.decision.status);
    }
    const ended = await steps.endSettlement({
      workflowId,
      status: 'superseded',
      reason: `superseded by run ${s.supersededBy}`,
    });
    s.enter('closed', ended ?? 'superseded');
    return result(ended ?? 'superseded', `superseded by run ${s.supersededBy}`);
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // Canceled from the Web UI, the CLI or the API: the run ends as canceled, recorded before closing.
    await CancellationScope.nonCancellable(async () => {
      const ended = await steps.endSettlement({
        workflowId,
        status: 'canceled',
        reason: 'canceled from Temporal',
      });
      if (ended) s.enter('closed', ended);
    });
    throw err;
  }
}

/** One artist shard's payouts (a child, so a large catalogue's month stays within history limits). */
export async function royaltySettlementShard(input: ShardInput): Promise<ShardResult> {
  return bulk.computeShardPayouts(input);
}
