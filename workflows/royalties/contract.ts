import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Month, Pins } from '../../domain/royalties/pins';
import type { ScheduleDeclaration } from '../schedules';
import { SearchAttribute } from '../search-attributes';

/**
 * The royalties slice's contract: what the API, tests, benchmarks, the history recorder, the schedules
 * script and the stack know of the monthly settlement. Nothing else spells its IDs, queue, attributes
 * or handles.
 */

export const TASK_QUEUE = 'royalties';
export const SETTLEMENT_WORKFLOW = 'royaltySettlement';
export const SHARD_WORKFLOW = 'royaltySettlementShard';
export const SCHEDULED_WORKFLOW = 'scheduledRoyaltySettlement';

/** `royalty-settlement-2026-10` for a month's first run, `royalty-settlement-2026-10-rerun-1` after. */
export const settlementWorkflowId = (month: Month, rerun = 0) =>
  rerun === 0 ? `royalty-settlement-${month}` : `royalty-settlement-${month}-rerun-${rerun}`;
/** One child per artist shard: `royalty-settlement-2026-10-shard-3`. */
export const shardWorkflowId = (settlementId: string, shard: number) => `${settlementId}-shard-${shard}`;

export const SEARCH = {
  month: SearchAttribute.month,
  status: SearchAttribute.status,
  escalated: SearchAttribute.escalated,
};

/** Why a request is refused or a step fails for good; every one maps to a problem type (api/problems.ts). */
export const RoyaltiesFailure = {
  /** A settlement of a month that has not ended. */
  MonthNotClosed: 'MonthNotClosed',
  /** The finance user who started a run asked to approve it (separation of duties). */
  SameApprover: 'SameApprover',
  /** Approve or reject of a run that is not waiting for a decision (approved, rejected, superseded …). */
  NotAwaitingApproval: 'NotAwaitingApproval',
  /** Approve of a run whose exceptions hold it (missing rate, unknown track, currency mismatch). */
  RunHeld: 'RunHeld',
  /** A re-run while a run of the month is still computing. */
  RunInProgress: 'RunInProgress',
  /** A repin naming a rate version that does not exist or is not published. */
  UnknownRateVersion: 'UnknownRateVersion',
  /** A repin naming a policy version that does not exist. */
  UnknownPolicyVersion: 'UnknownPolicyVersion',
  /** A repinned cut-off that is not a whole hour at or after the month's end. */
  InvalidCutoff: 'InvalidCutoff',
} as const;
export type RoyaltiesFailure = (typeof RoyaltiesFailure)[keyof typeof RoyaltiesFailure];

/** Pins a re-run may change; the rest come from the run it re-runs. */
export interface Repin {
  ingestionCutoff?: string;
  rateVersion?: number;
  policyVersion?: number;
}

export interface SettlementInput {
  month: Month;
  /** The run's ID, decided by the starter (the API derives it from the workflow ID); else the freeze picks one. */
  runId?: string;
  /** 0 for the month's first run; n for `…-rerun-n`. */
  rerun: number;
  /** The token subject (or `schedule`) that started the run: it may not approve it. */
  startedBy: string;
  reason?: string;
  repin?: Repin;
  /** An Idempotency-Key and the hash of the request it came with (re-runs). */
  idempotencyKey?: string;
  requestHash?: string;
  /** Artist shards, one child workflow each. */
  shards: number;
  /** The default cut-off is the month's end plus this many hours. */
  latenessHours: number;
  /** Finance is reminded (and the run escalated) after this many days without a decision, then again. */
  reminderDays: number;
}

/**
 * settlement: a month's settlement, to be approved; verification: the same pins as an earlier run, to prove
 * it reproduces (never approved); correction: other pins for a month already approved — approved, its
 * money difference is carried into the next open month.
 */
export type RunKind = 'settlement' | 'verification' | 'correction';

export type RunStatus =
  | 'running'
  | 'held'
  | 'awaiting_approval'
  | 'approved'
  | 'rejected'
  | 'superseded'
  | 'canceled'
  | 'failed'
  | 'verified'
  | 'carried_forward';

export type Phase =
  'freezing' | 'waiting_for_cutoff' | 'snapshot' | 'payouts' | 'statement' | 'deciding' | 'closed';

/** What the freeze step decided: the run's row, pins and kind. */
export interface FrozenRun {
  runId: string;
  kind: RunKind;
  pins: Pins;
  /** The run whose snapshot this run computes from (itself, unless it verifies another run). */
  snapshotRunId: string;
  verifiesRunId: string | null;
  supersedesRunId: string | null;
  /** Workflows of the open runs (awaiting approval or held) this run replaced: each is told to close. */
  supersededWorkflowIds: string[];
  /** The frozen run's status (a retried freeze of a run that already moved on says where it is). */
  status: RunStatus;
}

export interface SettlementProgress {
  month: Month;
  rerun: number;
  runId: string | null;
  kind: RunKind | null;
  status: RunStatus | 'starting';
  phase: Phase;
  snapshotLines: number | null;
  shardsDone: number;
  shardsTotal: number;
  statementSha256: string | null;
  exceptions: number | null;
  escalated: boolean;
}

export interface SettlementResult {
  month: Month;
  runId: string | null;
  kind: RunKind | null;
  status: RunStatus | 'refused';
  statementSha256: string | null;
  /** Verification: the statement equals the verified run's, byte for byte. */
  reproduced: boolean | null;
  reason: string | null;
}

export interface Decision {
  runId: string;
  status: RunStatus;
  decidedBy: string;
  decidedAt: string;
}

export interface ShardInput {
  runId: string;
  /** The run whose snapshot is read (a verification reads the verified run's). */
  snapshotRunId: string;
  shard: number;
  shards: number;
}

export interface ShardResult {
  shard: number;
  artists: number;
  lines: number;
  heldLines: number;
}

export interface ScheduledSettlementInput {
  shards: number;
  latenessHours: number;
  reminderDays: number;
}

export const settlementProgress = defineQuery<SettlementProgress>('progress');
export const approveSettlement = defineUpdate<Decision, [{ approver: string }]>('approve');
export const rejectSettlement = defineUpdate<Decision, [{ by: string; reason: string }]>('reject');
/** From the run that replaces this one: close as superseded. */
export const supersedeSettlement = defineSignal<[{ byRunId: string }]>('superseded');

/** A Temporal Schedule: the previous month's settlement, on the 1st at 02:00 UTC. */
export const SETTLEMENT_SCHEDULE_ID = 'royalty-settlement-monthly';

export const SCHEDULES: readonly ScheduleDeclaration[] = [
  {
    scheduleId: SETTLEMENT_SCHEDULE_ID,
    description: "Settles the previous month's royalties (a run waiting for finance's approval)",
    spec: { cron: '0 2 1 * *' },
    workflowType: SCHEDULED_WORKFLOW,
    workflowId: 'royalty-settlement-scheduled',
    taskQueue: TASK_QUEUE,
    args: (cfg): [ScheduledSettlementInput] => [
      {
        shards: cfg.royalties.shards,
        latenessHours: cfg.royalties.latenessHours,
        reminderDays: cfg.royalties.reminderDays,
      },
    ],
  },
];
