import type { ScheduleDeclaration } from '../lib/schedules';
import { SCHEDULES as ROYALTIES } from './royalties/contract';

/**
 * Every Temporal Schedule Cadenza runs, declared in the slices' contracts and collected here.
 * `npm run schedules` (scripts/schedules.ts, also run by `npm run up`) creates or updates them
 * idempotently (lib/schedules.ts). A slice adds its schedules by exporting `SCHEDULES` from its contract
 * and listing them below.
 */
export type { ScheduleDeclaration };

export const SCHEDULES: readonly ScheduleDeclaration[] = [...ROYALTIES];
