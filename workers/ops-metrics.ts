import { Client, type ConnectionLike } from '@temporalio/client';
import { Gauge, type Registry } from 'prom-client';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { partitionRunway } from '../activities/ops/partitions';
import { childLogger } from '../lib/logger';
import { OpsJob } from '../workflows/ops/contract';
import { SCHEDULES } from '../workflows/schedules';

/**
 * The operators' gauges, read from the projections at scrape time (so they hold whatever process wrote the
 * state, and survive the process that did): scheduled jobs, partitions, backups and drills, the outbox
 * backlog, settlements waiting for approval, GDPR deadlines, and failed runs of every schedule (Temporal
 * visibility). docs/alerts.yml alerts on them; docs/runbook.md says what each means.
 */

const log = childLogger('ops-metrics');
const CACHE_MS = 5_000;
const SCHEDULE_CACHE_MS = 30_000;
const OPEN_GDPR = ['received', 'in_progress', 'verifying', 'escalated'];

const JobRow = z.object({
  job: z.string(),
  last_success: z.number().nullable(),
  last_status: z.string().nullable(),
});
const Num = z.object({ value: z.number().nullable() });
const Drill = z.object({
  drill_id: z.string(),
  backup_id: z.string().nullable(),
  passed: z.boolean(),
  finished: z.number(),
});
const Backup = z.object({ backup_id: z.string(), completed: z.number() });
const Outbox = z.object({ oldest: z.number(), undelivered: z.number(), dead: z.number() });
const Gdpr = z.object({ overdue: z.number(), within_7d: z.number(), later: z.number() });

interface Snapshot {
  jobs: z.infer<typeof JobRow>[];
  runway: { parent_table: string; runway_days: number | null }[];
  lastBackup: z.infer<typeof Backup> | null;
  drill: z.infer<typeof Drill> | null;
  outbox: z.infer<typeof Outbox>;
  settlementWaiting: number;
  gdpr: z.infer<typeof Gdpr>;
}

/** Everything at once, at most every few seconds (every gauge's collect asks for it on each scrape). */
export async function readOpsState(pool: DatabasePool): Promise<Snapshot> {
  const jobs = await pool.any(sql.type(JobRow)`
    SELECT j.job,
      (SELECT extract(epoch FROM r.finished_at)::float8 FROM ops_job_runs r
        WHERE r.job = j.job AND r.status = 'succeeded' ORDER BY r.started_at DESC LIMIT 1) AS last_success,
      (SELECT r.status FROM ops_job_runs r
        WHERE r.job = j.job AND r.status <> 'running' ORDER BY r.started_at DESC LIMIT 1) AS last_status
    FROM unnest(${sql.array(Object.values(OpsJob), 'text')}) AS j(job)`);
  const lastBackup = await pool.maybeOne(sql.type(Backup)`
    SELECT backup_id, extract(epoch FROM completed_at)::float8 AS completed FROM backups
    WHERE status IN ('completed', 'expired') ORDER BY completed_at DESC LIMIT 1`);
  const drill = await pool.maybeOne(sql.type(Drill)`
    SELECT drill_id, backup_id, status = 'passed' AS passed, extract(epoch FROM finished_at)::float8 AS finished
    FROM restore_drills WHERE status IN ('passed', 'failed') ORDER BY finished_at DESC LIMIT 1`);
  const outbox = await pool.one(sql.type(Outbox)`
    SELECT coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE published_at IS NULL AND dead_at IS NULL)), 0)::float8 AS oldest,
      count(*) FILTER (WHERE published_at IS NULL AND dead_at IS NULL)::int AS undelivered,
      count(*) FILTER (WHERE dead_at IS NOT NULL)::int AS dead
    FROM outbox_messages WHERE published_at IS NULL`);
  const settlementWaiting = await pool.oneFirst(sql.type(Num)`
    SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS value
    FROM settlement_runs WHERE status = 'awaiting_approval'`);
  // The deadline may have been extended (a column of the compliance slice, read if it is there).
  const gdpr = await pool.one(sql.type(Gdpr)`
    SELECT count(*) FILTER (WHERE due <= now())::int AS overdue,
      count(*) FILTER (WHERE due > now() AND due <= now() + interval '7 days')::int AS within_7d,
      count(*) FILTER (WHERE due > now() + interval '7 days')::int AS later
    FROM (SELECT coalesce((to_jsonb(g) ->> 'extended_due_at')::timestamptz, g.due_at) AS due
          FROM gdpr_requests g WHERE g.status = ANY(${sql.array(OPEN_GDPR, 'text')})) open`);
  const runway = await partitionRunway(pool);
  return {
    jobs: [...jobs],
    runway: [...runway],
    lastBackup,
    drill,
    outbox,
    settlementWaiting: settlementWaiting ?? 0,
    gdpr,
  };
}

/** Failed runs per declared schedule in the last day, from Temporal's visibility store. */
async function failedScheduleRuns(
  client: Client,
  scheduleIds: readonly string[],
): Promise<Map<string, number>> {
  const since = new Date(Date.now() - 86_400_000).toISOString();
  const counts = new Map<string, number>();
  for (const id of scheduleIds) {
    const { count } = await client.workflow.count(
      `TemporalScheduledById = '${id}' AND ExecutionStatus IN ('Failed', 'TimedOut', 'Terminated') AND CloseTime > '${since}'`,
    );
    counts.set(id, count);
  }
  return counts;
}

function cached<T>(ms: number, load: () => Promise<T>): () => Promise<T> {
  let at = 0;
  let value: Promise<T> | undefined;
  return () => {
    if (!value || Date.now() - at > ms) {
      at = Date.now();
      value = load();
      value.catch(() => (value = undefined));
    }
    return value;
  };
}

export function registerOpsMetrics(
  registry: Registry,
  deps: {
    pool: DatabasePool;
    temporal?: { connection: ConnectionLike; namespace: string };
    /** The schedules whose failed runs are counted: every declared one unless given. */
    scheduleIds?: readonly string[];
    /** How long a count from Temporal's visibility is reused (it is the heavier read). */
    scheduleCacheMs?: number;
  },
): void {
  const state = cached(CACHE_MS, () => readOpsState(deps.pool));
  const temporal = deps.temporal
    ? new Client({ connection: deps.temporal.connection, namespace: deps.temporal.namespace })
    : undefined;
  const schedules = cached(deps.scheduleCacheMs ?? SCHEDULE_CACHE_MS, () =>
    temporal
      ? failedScheduleRuns(temporal, deps.scheduleIds ?? SCHEDULES.map((d) => d.scheduleId))
      : Promise.resolve(new Map<string, number>()),
  );
  const registers = [registry];
  /** A gauge filled from the snapshot; a store that does not answer leaves it empty (and logs why). */
  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    fill: (g: Gauge<L>, s: Snapshot) => void,
  ) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        this.reset();
        try {
          fill(this, await state());
        } catch (err) {
          log.warn({ err: (err as Error).message, metric: name }, 'ops metric unavailable');
        }
      },
    });

  gauge(
    'cadenza_ops_job_last_success_timestamp_seconds',
    'when each scheduled job last succeeded (Unix time)',
    ['job'],
    (g, s) => {
      for (const j of s.jobs) if (j.last_success !== null) g.set({ job: j.job }, j.last_success);
    },
  );
  gauge(
    'cadenza_ops_job_last_run_failed',
    '1 when the latest finished run of the job failed',
    ['job'],
    (g, s) => {
      for (const j of s.jobs) if (j.last_status) g.set({ job: j.job }, j.last_status === 'failed' ? 1 : 0);
    },
  );
  gauge(
    'cadenza_partition_runway_days',
    'days of future partitions left, per partitioned table',
    ['table'],
    (g, s) => {
      for (const r of s.runway) g.set({ table: r.parent_table }, r.runway_days ?? 0);
    },
  );
  // Labelled by what they describe, so that before the first backup or drill there is no series at all (an
  // unlabelled gauge would read 0: "the drill failed").
  gauge(
    'cadenza_backup_last_completed_timestamp_seconds',
    'when the last backup completed (Unix time)',
    ['backup_id'],
    (g, s) => {
      if (s.lastBackup) g.set({ backup_id: s.lastBackup.backup_id }, s.lastBackup.completed);
    },
  );
  gauge(
    'cadenza_restore_drill_last_passed',
    '1 when the latest restore drill passed, 0 when it failed',
    ['drill_id', 'backup_id'],
    (g, s) => {
      if (s.drill)
        g.set({ drill_id: s.drill.drill_id, backup_id: s.drill.backup_id ?? '' }, s.drill.passed ? 1 : 0);
    },
  );
  gauge(
    'cadenza_restore_drill_last_finished_timestamp_seconds',
    'when the latest restore drill finished (Unix time)',
    ['drill_id'],
    (g, s) => {
      if (s.drill) g.set({ drill_id: s.drill.drill_id }, s.drill.finished);
    },
  );
  gauge(
    'cadenza_outbox_oldest_undelivered_seconds',
    'age of the oldest outbox message not yet delivered (0: none)',
    [],
    (g, s) => g.set(s.outbox.oldest),
  );
  gauge(
    'cadenza_outbox_undelivered_messages',
    'outbox messages waiting for delivery (retries included)',
    [],
    (g, s) => g.set(s.outbox.undelivered),
  );
  gauge(
    'cadenza_outbox_dead_letter_messages',
    'outbox messages given up after the last attempt',
    [],
    (g, s) => g.set(s.outbox.dead),
  );
  gauge(
    'cadenza_settlement_awaiting_approval_seconds',
    'age of the oldest settlement run waiting for approval (0: none)',
    [],
    (g, s) => g.set(s.settlementWaiting),
  );
  gauge(
    'cadenza_gdpr_open_requests',
    'open GDPR requests by how close their (extended) deadline is',
    ['due'],
    (g, s) => {
      g.set({ due: 'overdue' }, s.gdpr.overdue);
      g.set({ due: 'within_7d' }, s.gdpr.within_7d);
      g.set({ due: 'later' }, s.gdpr.later);
    },
  );
  new Gauge({
    name: 'cadenza_schedule_failed_runs',
    help: 'runs started by each schedule that failed, timed out or were terminated in the last 24 hours',
    labelNames: ['schedule_id'],
    registers,
    async collect() {
      this.reset();
      try {
        for (const [id, n] of await schedules()) this.set({ schedule_id: id }, n);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'schedule failures unavailable');
      }
    },
  });
}
