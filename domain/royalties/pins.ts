/**
 * What defines a settlement run: its pins. Two runs with the same pins compute the same statement from
 * the same snapshot, byte for byte. Workflow-safe: no clock (callers pass instants), no I/O.
 */

/** The settlement code's version, pinned on every run; a change to what a statement holds bumps it. */
export const SETTLEMENT_CODE_VERSION = 1;

/** A settlement month, `YYYY-MM`. */
export type Month = string;
const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

/**
 * The months that can be settled, 2000-01 to 2099-12, as a JSON Schema pattern: the API's schemas state it,
 * so what validation admits is exactly what {@link isMonth} accepts (and every such month is a date
 * PostgreSQL holds). `[0-9]`, not `\d`: other regex dialects (a client's; the fuzzer's, Python's) read
 * `\d` as any Unicode digit.
 */
export const SETTLEMENT_MONTH_PATTERN = '^20[0-9]{2}-(0[1-9]|1[0-2])$';
const SETTLEMENT_MONTH = new RegExp(SETTLEMENT_MONTH_PATTERN);

export const isMonth = (s: string): s is Month => SETTLEMENT_MONTH.test(s);

function parts(month: Month): [number, number] {
  const m = MONTH.exec(month);
  if (!m) throw new RangeError(`not a month (YYYY-MM): ${JSON.stringify(month)}`);
  return [Number(m[1]), Number(m[2])];
}

/** The first instant of the month (UTC), in ms. */
export function monthStart(month: Month): number {
  const [y, m] = parts(month);
  return Date.UTC(y, m - 1, 1);
}

/** The first instant after the month (UTC), in ms. */
export function monthEnd(month: Month): number {
  const [y, m] = parts(month);
  return Date.UTC(y, m, 1);
}

/** `2026-10` → `2026-10-01`, the form PostgreSQL keeps months in. */
export const monthDate = (month: Month): string => `${month}-01`;

export function monthOf(ms: number): Month {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** The month before the one containing `ms`: what the schedule on the 1st settles. */
export const previousMonth = (ms: number): Month => monthOf(monthStart(monthOf(ms)) - 1);

export const HOUR_MS = 3_600_000;

/**
 * The default cut-off: the month's end plus the allowed lateness (whole hours: ingestion is rolled up by
 * the hour, so a cut-off falls on an hour).
 */
export function defaultCutoff(month: Month, latenessHours: number): number {
  if (!Number.isInteger(latenessHours) || latenessHours < 0)
    throw new RangeError('lateness is a whole number of hours');
  return monthEnd(month) + latenessHours * HOUR_MS;
}

/** Why a cut-off cannot pin this month, or null when it can. */
export function cutoffProblem(month: Month, cutoffMs: number): string | null {
  if (!Number.isFinite(cutoffMs)) return 'the cut-off is not a time';
  if (cutoffMs % HOUR_MS !== 0) return 'the cut-off must fall on a whole hour (UTC)';
  if (cutoffMs < monthEnd(month))
    return `the cut-off must be at or after the month's end (${iso(monthEnd(month))})`;
  return null;
}

const iso = (ms: number) => new Date(ms).toISOString();

export interface Pins {
  month: Month;
  /** ISO instant: ticks first ingested before it count. */
  ingestionCutoff: string;
  rateVersion: number;
  policyVersion: number;
  codeVersion: number;
  /** ISO instant: corrections approved up to it are carried into this month. */
  adjustmentsThrough: string;
}

/** Same pins, same statement: every pin must match (instants compared as instants). */
export function samePins(a: Pins, b: Pins): boolean {
  return (
    a.month === b.month &&
    Date.parse(a.ingestionCutoff) === Date.parse(b.ingestionCutoff) &&
    a.rateVersion === b.rateVersion &&
    a.policyVersion === b.policyVersion &&
    a.codeVersion === b.codeVersion &&
    Date.parse(a.adjustmentsThrough) === Date.parse(b.adjustmentsThrough)
  );
}

/** The pins that differ, by name, for the run's explanation of a diff. */
export function changedPins(from: Pins, to: Pins): (keyof Pins)[] {
  const keys: (keyof Pins)[] = [
    'month',
    'ingestionCutoff',
    'rateVersion',
    'policyVersion',
    'codeVersion',
    'adjustmentsThrough',
  ];
  return keys.filter((k) =>
    k === 'ingestionCutoff' || k === 'adjustmentsThrough'
      ? Date.parse(from[k]) !== Date.parse(to[k])
      : from[k] !== to[k],
  );
}
