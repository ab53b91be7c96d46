import { addSpan } from '../billing/terms';

/**
 * The legal clock of a GDPR request (Art. 12(3)), pure so workflows and the API share it. A request is
 * answered within one calendar month of receipt (the same day of the next month, or its last day); it
 * escalates to a person at day 25, and an extension (up to two further months) moves both.
 */
const DAY = 86_400_000;
/** Art. 12(3): answered within one month; the run escalates to a person at day 25. */
export const DEADLINE_MONTHS = 1;
export const ESCALATE_AFTER_DAYS = 25;
/** After an extension, escalation comes this many days before the extended due date. */
export const ESCALATE_BEFORE_DUE_DAYS = 5;
/** Art. 12(3): the deadline may be extended by two further months, with a reason. */
export const MAX_EXTENSION_MONTHS = 2;

export const dueAt = (receivedMs: number): number => addSpan(receivedMs, { months: DEADLINE_MONTHS }, 1);

/** Day 25 after receipt; after an extension, five days before the extended due date. */
export function escalateAt(receivedMs: number, extendedDueMs: number | null): number {
  if (extendedDueMs === null) return receivedMs + ESCALATE_AFTER_DAYS * DAY;
  return extendedDueMs - ESCALATE_BEFORE_DUE_DAYS * DAY;
}

/** The extended due date, or the reason it is refused (a person can act on it). */
export function extendedDueAt(
  dueMs: number,
  months: number,
  alreadyExtended: boolean,
): { dueMs: number } | { refused: string } {
  if (alreadyExtended)
    return { refused: 'The deadline was extended already; Art. 12(3) allows one extension.' };
  if (!Number.isInteger(months) || months < 1 || months > MAX_EXTENSION_MONTHS)
    return { refused: `An extension is 1 to ${MAX_EXTENSION_MONTHS} months (Art. 12(3)).` };
  return { dueMs: addSpan(dueMs, { months }, 1) };
}
