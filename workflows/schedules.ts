import type { Config } from '../lib/config';
import type { TaskQueue } from '../lib/task-queues';
import { SCHEDULES as BILLING } from './billing/contract';
import { SCHEDULES as CATALOG } from './catalog/contract';
import { SCHEDULES as OPS } from './ops/contract';
import { SCHEDULES as ROYALTIES } from './royalties/contract';

/**
 * Every Temporal Schedule Cadenza runs, declared in the slices' contracts (`SCHEDULES`) and collected here.
 * `npm run schedules` (scripts/schedules.ts, also run by `npm run up`) creates the missing ones and updates
 * those whose declaration changed, leaving a schedule an operator paused paused.
 */
export interface ScheduleDeclaration {
  /** The schedule's ID in Temporal: stable, so a second run updates instead of adding one. */
  scheduleId: string;
  /** Shown in the Web UI beside the schedule (its memo `description`). */
  description: string;
  /** When, in UTC: a cron expression (minute hour day-of-month month day-of-week), or a fixed interval. */
  spec: { cron: string } | { every: `${number}${'s' | 'm' | 'h' | 'd'}` };
  workflowType: string;
  /** Each run's ID before Temporal appends the scheduled time; the run derives its business key itself. */
  workflowId: string;
  taskQueue: TaskQueue;
  /** The workflow's arguments, from the configuration (IDs and numbers only, never personal data). */
  args: (cfg: Config) => unknown[];
}

export const SCHEDULES: readonly ScheduleDeclaration[] = [...BILLING, ...CATALOG, ...OPS, ...ROYALTIES];
