import { createHash } from 'node:crypto';
import { ScheduleAlreadyRunning, ScheduleNotFoundError, type Client } from '@temporalio/client';
import type { Config } from './config';
import type { TaskQueue } from './task-queues';

/**
 * Temporal Schedules from declarations (the slices declare theirs in their contracts; workflows/schedules.ts
 * collects them): made when missing, updated when the declaration changed, left alone otherwise — so a
 * second run changes nothing, and an operator's pause survives. What was declared is remembered as a
 * fingerprint at the end of the schedule's note (a schedule's memo cannot be updated).
 */
export interface ScheduleDeclaration {
  /** The schedule's ID in Temporal: stable, so a second run updates instead of adding one. */
  scheduleId: string;
  /** Shown in the Web UI. */
  note: string;
  /** When, in UTC (omitted: every day of the month; hour and minute default to 0, the second is 0). */
  calendar: { dayOfMonth?: number; hour?: number; minute?: number };
  workflowType: string;
  /** Each run's ID before Temporal appends the scheduled time; the workflow derives its business key. */
  workflowId: string;
  taskQueue: TaskQueue;
  /** The workflow's arguments, from the configuration (IDs and numbers only). */
  args: (cfg: Config) => unknown[];
}

export type ScheduleOutcome = 'created' | 'updated' | 'unchanged';

function desired(d: ScheduleDeclaration, cfg: Config) {
  const calendar = { hour: d.calendar.hour ?? 0, minute: d.calendar.minute ?? 0, second: 0, ...d.calendar };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: d.workflowType,
    workflowId: d.workflowId,
    taskQueue: d.taskQueue,
    args: d.args(cfg),
  };
  const policies = { overlap: 'SKIP' as const, catchupWindow: '1 day' };
  const fingerprint = createHash('sha256')
    .update(JSON.stringify({ calendar, action, policies, timezone: 'UTC' }))
    .digest('hex')
    .slice(0, 16);
  return {
    spec: { calendars: [calendar], timezone: 'UTC' },
    action,
    policies,
    note: `${d.note} [declared ${fingerprint}]`,
  };
}

export async function ensureSchedules(
  client: Client,
  declarations: readonly ScheduleDeclaration[],
  cfg: Config,
): Promise<{ scheduleId: string; outcome: ScheduleOutcome }[]> {
  const out: { scheduleId: string; outcome: ScheduleOutcome }[] = [];
  for (const d of declarations) {
    const want = desired(d, cfg);
    const handle = client.schedule.getHandle(d.scheduleId);
    const seen = await handle.describe().catch((err: unknown) => {
      if (err instanceof ScheduleNotFoundError) return null;
      throw err;
    });
    if (!seen) {
      try {
        await client.schedule.create({
          scheduleId: d.scheduleId,
          spec: want.spec,
          action: want.action,
          policies: want.policies,
          state: { note: want.note },
        });
        out.push({ scheduleId: d.scheduleId, outcome: 'created' });
        continue;
      } catch (err) {
        // Another run of this script made it just now: compare with what it made.
        if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      }
    }
    const current = seen ?? (await handle.describe());
    if (current.state.note === want.note) {
      out.push({ scheduleId: d.scheduleId, outcome: 'unchanged' });
      continue;
    }
    await handle.update((prev) => ({
      ...prev,
      spec: want.spec,
      action: want.action,
      policies: { ...prev.policies, ...want.policies },
      state: { paused: prev.state.paused, note: want.note },
    }));
    out.push({ scheduleId: d.scheduleId, outcome: 'updated' });
  }
  return out;
}
