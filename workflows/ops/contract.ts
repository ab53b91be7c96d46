import type { Duration } from '@temporalio/common';
import { SearchAttribute } from '../search-attributes';
import type { ScheduleDeclaration } from '../schedules';

/**
 * The ops slice's contract: the `ping` workflow that proves API → Temporal → worker → activity, and the
 * nightly jobs run by Temporal Schedules (dimension refresh, partition maintenance, backups, the restore
 * drill, recommendations). Nothing else spells their IDs, queue, schedules or failure types.
 */

export const TASK_QUEUE = 'ops';
export const PING_WORKFLOW = 'ping';
export const pingWorkflowId = (key: string) => `ping-${key}`;

/** The activity's start-to-close timeout; the API refuses work that could not finish inside it. */
export const PING_ACTIVITY_TIMEOUT_MS = 5 * 60_000;

export const OpsFailure = {
  /** The restore drill found the latest backup unusable: restored data differs from the source. */
  RestoreDrillFailed: 'RestoreDrillFailed',
  /** A drill asked for a backup that does not exist or never completed. */
  BackupNotFound: 'BackupNotFound',
} as const;
export type OpsFailure = (typeof OpsFailure)[keyof typeof OpsFailure];

export interface PingInput {
  /** An opaque correlation value; never personal data (DESIGN §2). */
  token: string;
  /** Optional pause before answering, to prove timers (and time skipping) work. */
  delay?: Duration;
  /** Optional activity work time, to prove graceful worker shutdown. */
  workMs?: number;
}

export interface PingResult {
  token: string;
  answeredBy: string;
  activityAttempt: number;
}

// ---- The scheduled jobs ----------------------------------------------------------------------------

/** A job's name: the prefix of its runs' IDs and its label in the job metrics. */
export const OpsJob = {
  dimensionRefresh: 'dimension-refresh',
  partitionMaintenance: 'partition-maintenance',
  backup: 'backup',
  restoreDrill: 'restore-drill',
  recommendations: 'recommendations',
} as const;
export type OpsJob = (typeof OpsJob)[keyof typeof OpsJob];

/** Workflow types, as the Web UI lists them. */
export const OPS_WORKFLOWS = {
  dimensionRefresh: 'dimensionRefresh',
  partitionMaintenance: 'partitionMaintenance',
  backup: 'backupStores',
  restoreDrill: 'restoreDrill',
  recommendations: 'refreshRecommendations',
} as const;

const pad = (n: number) => String(n).padStart(2, '0');
/** An instant to the minute in UTC, `2026-11-30T0300Z`: a backup's ID, the tail of every run's key. */
export const minuteKey = (at: Date) =>
  `${at.getUTCFullYear()}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())}T${pad(at.getUTCHours())}${pad(at.getUTCMinutes())}Z`;
/** A job run's workflow ID, from its business key: the job and the minute it was due. */
export const opsRunId = (job: OpsJob, at: Date) => `${job}-${minuteKey(at)}`;
export const BACKUP_ID = /^\d{4}-\d{2}-\d{2}T\d{4}Z$/;

/** Operators filter the jobs' runs by their outcome: `running`, `succeeded`, `passed`, `failed`. */
export const SEARCH = { status: SearchAttribute.status };

export const SCHEDULE_IDS = {
  dimensionRefresh: 'ops-dimension-refresh',
  partitionMaintenance: 'ops-partition-maintenance',
  backup: 'ops-backup-nightly',
  restoreDrill: 'ops-restore-drill-weekly',
  recommendations: 'ops-recommendations-nightly',
} as const;

/** Each schedule starts a short launcher that derives the run's business key and runs the job as its child. */
export const SCHEDULED_WORKFLOWS = {
  dimensionRefresh: 'scheduledDimensionRefresh',
  partitionMaintenance: 'scheduledPartitionMaintenance',
  backup: 'scheduledBackup',
  restoreDrill: 'scheduledRestoreDrill',
  recommendations: 'scheduledRecommendations',
} as const;

export interface DimensionRefreshInput {
  /** Rows changed this long before the last watermark are read again: a transaction may commit late. */
  overlapSeconds: number;
}
export interface DimensionRefreshResult {
  since: string | null;
  until: string;
  tracks: number;
  campaigns: number;
  users: number;
  erasedUsersRemoved: number;
}

export interface PartitionMaintenanceResult {
  tables: { table: string; partitionsCreated: number; partitionsDropped: number; runwayDays: number }[];
}

export interface BackupInput {
  /** The minute the backup was due, `2026-11-30T0300Z`: its ID and its folder in the bucket. */
  backupId: string;
  retentionDays: number;
  /** Completed backups always kept, however old (a stalled schedule must not empty the bucket). */
  keepAtLeast: number;
}
export interface BackupResult {
  backupId: string;
  manifestKey: string;
  bytes: number;
  objects: number;
  expired: string[];
}

export interface RestoreDrillInput {
  drillId: string;
  /** The backup to restore; the latest completed one when absent. */
  backupId?: string;
}
export interface DrillFailure {
  store: 'postgres' | 'clickhouse' | 'opensearch' | 'manifest';
  object: string;
  reason: string;
}
export interface RestoreDrillResult {
  drillId: string;
  backupId: string;
  status: 'passed' | 'failed';
  checks: number;
  failures: DrillFailure[];
}

export interface RecommendationsInput {
  /** Plays of the last this many days count. */
  windowDays: number;
  /** Recommendations kept per listener. */
  perUser: number;
  /** Neighbours kept per track. */
  neighbors: number;
  /** Listeners are handled in this many shards (one activity each). */
  shards: number;
}
export interface RecommendationsResult {
  runId: string;
  tracksWithNeighbors: number;
  listeners: number;
}

/** Launchers' answer: the child's ID and result, or that the key had run already. */
export interface LaunchResult<R> {
  workflowId: string;
  started: boolean;
  result?: R;
}

export const SCHEDULES: readonly ScheduleDeclaration[] = [
  {
    scheduleId: SCHEDULE_IDS.dimensionRefresh,
    description:
      'Copies changed tracks, campaigns and users to the ClickHouse dimensions; removes erased users',
    spec: { every: '5m' },
    workflowType: SCHEDULED_WORKFLOWS.dimensionRefresh,
    workflowId: 'ops-dimension-refresh-scheduled',
    taskQueue: TASK_QUEUE,
    args: (): [DimensionRefreshInput] => [{ overlapSeconds: 600 }],
  },
  {
    scheduleId: SCHEDULE_IDS.partitionMaintenance,
    description: "pg_partman maintenance: next months' partitions ahead, old ones dropped per table policy",
    spec: { cron: '15 1 * * *' },
    workflowType: SCHEDULED_WORKFLOWS.partitionMaintenance,
    workflowId: 'ops-partition-maintenance-scheduled',
    taskQueue: TASK_QUEUE,
    args: () => [],
  },
  {
    scheduleId: SCHEDULE_IDS.backup,
    description:
      'Backs up PostgreSQL, ClickHouse and OpenSearch into the backups bucket; expires old backups',
    spec: { cron: '0 3 * * *' },
    workflowType: SCHEDULED_WORKFLOWS.backup,
    workflowId: 'ops-backup-scheduled',
    taskQueue: TASK_QUEUE,
    args: (cfg): [Omit<BackupInput, 'backupId'>] => [
      { retentionDays: cfg.backups.retentionDays, keepAtLeast: cfg.backups.keepAtLeast },
    ],
  },
  {
    scheduleId: SCHEDULE_IDS.restoreDrill,
    description: 'Restores the latest backup into scratch databases and compares it with the source',
    spec: { cron: '0 5 * * 0' },
    workflowType: SCHEDULED_WORKFLOWS.restoreDrill,
    workflowId: 'ops-restore-drill-scheduled',
    taskQueue: TASK_QUEUE,
    args: () => [],
  },
  {
    scheduleId: SCHEDULE_IDS.recommendations,
    description: 'Recommends tracks to every listener from co-listening (users who played this also played)',
    spec: { cron: '30 4 * * *' },
    workflowType: SCHEDULED_WORKFLOWS.recommendations,
    workflowId: 'ops-recommendations-scheduled',
    taskQueue: TASK_QUEUE,
    args: (): [RecommendationsInput] => [{ windowDays: 30, perUser: 20, neighbors: 20, shards: 4 }],
  },
];
