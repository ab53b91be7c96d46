import type { Config } from '../lib/config';
import type { TaskQueue } from '../lib/task-queues';
import { SCHEDULES as ROYALTIES } from './royalties/contract';

/**
 * Every Temporal Schedule Cadenza runs, declared in the slices' contracts and collected here.
 * `npm run schedules` (scripts/schedules.ts) creates or updates them idempotently; `npm run up` runs it.
 * A slice adds its schedules by exporting `SCHEDULES` from its contract and listing them below.
 */
export interface ScheduleDeclaration {
  /** The schedule's ID in Temporal: stable, so a second run updates instead of adding one. */
  scheduleId: string;
  /** Shown in the Web UI. */
  note: string;
  /** When, in UTC: a calendar entry (omitted fields: every value, except the second: 0). */
  calendar: { month?: number; dayOfMonth?: number; dayOfWeek?: number; hour?: number; minute?: number };
  workflowType: string;
  /** The ID of each started run, before Temporal appends the scheduled time; the workflow derives its business key. */
  workflowId: string;
  taskQueue: TaskQueue;
  /** The workflow's arguments, from the configuration (IDs and numbers only). */
  args: (cfg: Config) => unknown[];
}

export const SCHEDULES: readonly ScheduleDeclaration[] = [...ROYALTIES];
