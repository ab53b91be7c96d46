import {
  Client,
  Connection,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type ScheduleDescription,
  type ScheduleOptions,
  type ScheduleSpec,
} from '@temporalio/client';
import { config, type Config } from '../lib/config';
import { SCHEDULES, type ScheduleDeclaration } from '../workflows/schedules';

/**
 * npm run schedules (also run by npm run up): every schedule declared in the slices' contracts
 * (workflows/schedules.ts) exists in Temporal as declared. A missing one is created; one whose spec, action
 * or policies differ from the declaration is updated; one that matches is left alone, so a second run changes
 * nothing. A schedule's paused state and note belong to operators and are never touched.
 */

/** A run whose previous run still runs is skipped; a missed firing is still made within the hour. */
export const SCHEDULE_POLICIES = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' } as const;
const CATCHUP_MS = 3_600_000;

export type Applied = { scheduleId: string; action: 'created' | 'updated' | 'unchanged' };

function specOf(d: ScheduleDeclaration): ScheduleSpec {
  return 'cron' in d.spec ? { cronExpressions: [d.spec.cron] } : { intervals: [{ every: d.spec.every }] };
}

export function scheduleOptions(d: ScheduleDeclaration, cfg: Config): ScheduleOptions {
  return {
    scheduleId: d.scheduleId,
    spec: specOf(d),
    action: {
      type: 'startWorkflow',
      workflowType: d.workflowType,
      workflowId: d.workflowId,
      taskQueue: d.taskQueue,
      args: d.args(cfg),
    },
    policies: SCHEDULE_POLICIES,
    memo: { description: d.description },
  };
}

// ---- The declared spec as Temporal describes it (cron is compiled into calendar ranges on the server) ----

interface Range {
  start: number;
  end: number;
  step: number;
}
const MONTHS = [
  'JANUARY',
  'FEBRUARY',
  'MARCH',
  'APRIL',
  'MAY',
  'JUNE',
  'JULY',
  'AUGUST',
  'SEPTEMBER',
  'OCTOBER',
  'NOVEMBER',
  'DECEMBER',
];
const DAYS = ['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY'];
const CRON_FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'dayOfMonth', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'dayOfWeek', min: 0, max: 6 },
] as const;

/** One cron field (`*`, `5`, `1-5`, `*\/15`, `1-20/5`, lists of these) as ranges. */
function cronField(text: string, min: number, max: number): Range[] {
  return text.split(',').map((part) => {
    const [base = '', stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    const [a, b] = base === '*' ? [min, max] : base.split('-').map(Number);
    const start = a as number;
    const end = b ?? (stepText === undefined ? start : max);
    if (![start, end, step].every(Number.isInteger) || start < min || end > max || start > end || step < 1)
      throw new Error(`cron field ${JSON.stringify(text)} is not within ${min}-${max}`);
    return { start, end, step };
  });
}

/** A comparable form of a spec: calendars (from cron or as described) and intervals, in milliseconds. */
export function canonicalSpec(
  spec: { cron: string } | { every: string } | ScheduleDescription['spec'],
): string {
  if ('cron' in spec) {
    const fields = spec.cron.trim().split(/\s+/);
    if (fields.length !== 5) throw new Error(`cron ${JSON.stringify(spec.cron)} needs five fields`);
    const calendar: Record<string, Range[]> = { second: [{ start: 0, end: 0, step: 1 }] };
    CRON_FIELDS.forEach((f, i) => (calendar[f.name] = cronField(fields[i] as string, f.min, f.max)));
    return JSON.stringify({ calendars: [calendar], intervals: [] });
  }
  if ('every' in spec)
    return JSON.stringify({ calendars: [], intervals: [{ every: msOf(spec.every), offset: 0 }] });
  const number = (v: unknown, names?: string[]) =>
    typeof v === 'string' && names ? names.indexOf(v) : Number(v);
  const ranges = (rs: unknown, names?: string[]) =>
    ((rs as { start: unknown; end?: unknown; step?: unknown }[] | undefined) ?? []).map((r) => ({
      start: number(r.start, names),
      end: number(r.end ?? r.start, names),
      step: Number(r.step ?? 1),
    }));
  const calendars = (spec.calendars ?? []).map((c) => {
    const cal = c as unknown as Record<string, unknown>;
    const month = ranges(cal.month, MONTHS).map((r) => ({ ...r, start: r.start + 1, end: r.end + 1 }));
    return {
      second: ranges(cal.second),
      minute: ranges(cal.minute),
      hour: ranges(cal.hour),
      dayOfMonth: ranges(cal.dayOfMonth),
      month,
      dayOfWeek: ranges(cal.dayOfWeek, DAYS),
    };
  });
  const intervals = (spec.intervals ?? []).map((i) => ({
    every: msOf(i.every),
    offset: msOf(i.offset ?? 0),
  }));
  return JSON.stringify({ calendars, intervals });
}

function msOf(d: unknown): number {
  if (typeof d === 'number') return d;
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(String(d));
  if (!m) throw new Error(`not a duration: ${String(d)}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    m[2] as 'ms' | 's' | 'm' | 'h' | 'd'
  ];
  return Number(m[1]) * unit;
}

/** What differs between a schedule as described and as declared (empty: nothing). */
export function differences(d: ScheduleDeclaration, cfg: Config, found: ScheduleDescription): string[] {
  const diffs: string[] = [];
  if (canonicalSpec(found.spec) !== canonicalSpec(d.spec)) diffs.push('spec');
  if (found.spec.timezone) diffs.push('timezone');
  const a = found.action;
  if (a.type !== 'startWorkflow') diffs.push('action type');
  else {
    if (a.workflowType !== d.workflowType) diffs.push('workflow type');
    if (a.workflowId !== d.workflowId) diffs.push('workflow ID');
    if (a.taskQueue !== d.taskQueue) diffs.push('task queue');
    if (JSON.stringify(a.args ?? []) !== JSON.stringify(d.args(cfg))) diffs.push('arguments');
  }
  if (found.policies.overlap !== SCHEDULE_POLICIES.overlap) diffs.push('overlap policy');
  if (Number(found.policies.catchupWindow) !== CATCHUP_MS) diffs.push('catch-up window');
  return diffs;
}

/** `createPaused`: new schedules start paused (tests, so nothing fires while they look). */
export async function applySchedules(
  client: Client,
  cfg: Config,
  declared: readonly ScheduleDeclaration[] = SCHEDULES,
  opts: { createPaused?: boolean } = {},
): Promise<Applied[]> {
  const applied: Applied[] = [];
  for (const d of declared) {
    const options = scheduleOptions(d, cfg);
    const handle = client.schedule.getHandle(d.scheduleId);
    let found: ScheduleDescription | undefined;
    try {
      found = await handle.describe();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
    if (!found) {
      await client.schedule.create(
        opts.createPaused ? { ...options, state: { paused: true, note: 'created paused' } } : options,
      );
      applied.push({ scheduleId: d.scheduleId, action: 'created' });
    } else if (differences(d, cfg, found).length) {
      // The operators' part (paused or not, and why) stays as it is.
      await handle.update((previous) => ({
        spec: options.spec,
        action: options.action,
        policies: options.policies,
        state: previous.state,
      }));
      applied.push({ scheduleId: d.scheduleId, action: 'updated' });
    } else {
      applied.push({ scheduleId: d.scheduleId, action: 'unchanged' });
    }
  }
  return applied;
}

async function main(): Promise<void> {
  const cfg = config();
  const connection = await Connection.connect({ address: cfg.temporal.address });
  try {
    const client = new Client({ connection, namespace: cfg.temporal.namespace });
    for (const a of await applySchedules(client, cfg)) {
      process.stdout.write(`${a.scheduleId.padEnd(34)} ${a.action}\n`);
    }
  } finally {
    await connection.close();
  }
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`schedules failed: ${err.message}\n`);
    process.exit(1);
  });
}
