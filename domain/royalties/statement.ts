import type { Pins } from './pins';
import type { Policy } from './policy';

/**
 * The statement's bytes: a summary (JSON) and one CSV per artist, in a fixed order with fixed number
 * formatting, holding only what the pins and the snapshot decide — no run ID, no clock, no names — so two
 * runs with the same pins write the same bytes. Amounts are the decimal text PostgreSQL gives for the
 * column's scale (rates and exact amounts with 6 places, cents with 2).
 */
export const STATEMENT_FORMAT = 'cadenza-royalty-statement/1';

export const CSV_HEADER = 'kind,reference,country,plays,rate_per_play,currency,exact_amount,amount\n';

export const artistFile = (artistId: string) => `artists/${artistId}.csv`;
export const SUMMARY_FILE = 'summary.json';

/** A play line: one track in one country. */
export function playLine(l: {
  trackId: string;
  country: string;
  plays: string | number;
  rate: string;
  currency: string;
  exact: string;
  amount: string;
}): string {
  return `play,${l.trackId},${l.country},${l.plays},${l.rate},${l.currency},${l.exact},${l.amount}\n`;
}

export interface ArtistTotal {
  artistId: string;
  currency: string;
  lines: number;
  plays: number;
  /** Exact sum of the lines (6 places). */
  exact: string;
  /** Cents earned this month (the rounded exact sum). */
  amount: string;
  /** Corrections of earlier months carried into this one. */
  adjustment: string;
  /** amount + adjustment. */
  payable: string;
}

export interface CarriedAdjustment {
  artistId: string;
  currency: string;
  originMonth: string;
  amount: string;
}

/** The lines closing an artist's file: corrections carried in, then one total per currency. */
export function artistFooter(
  totals: readonly ArtistTotal[],
  adjustments: readonly CarriedAdjustment[],
): string {
  let out = '';
  for (const a of adjustments)
    out += `adjustment,${a.originMonth},,,,${a.currency},${a.amount},${a.amount}\n`;
  for (const t of totals) out += `total,,,${t.plays},,${t.currency},${t.exact},${t.amount}\n`;
  for (const t of totals) if (t.adjustment !== '0.00') out += `payable,,,,,${t.currency},,${t.payable}\n`;
  return out;
}

export interface CurrencyTotal {
  currency: string;
  artists: number;
  lines: number;
  plays: number;
  amount: string;
  adjustment: string;
  payable: string;
}

export interface HeldException {
  kind: string;
  subject: string;
  plays: number;
  detail: string;
}

export interface StatementSummary {
  pins: Pins;
  policy: Policy;
  currencies: readonly CurrencyTotal[];
  excluded: { botPlays: number; belowThresholdPlays: number };
  held: readonly HeldException[];
  artists: readonly ArtistTotal[];
}

/** The summary as bytes: keys in a fixed order, two-space indentation, a final newline. */
export function summaryJson(s: StatementSummary): string {
  const doc = {
    format: STATEMENT_FORMAT,
    month: s.pins.month,
    pins: {
      ingestionCutoff: new Date(s.pins.ingestionCutoff).toISOString(),
      rateVersion: s.pins.rateVersion,
      policyVersion: s.pins.policyVersion,
      codeVersion: s.pins.codeVersion,
      adjustmentsThrough: new Date(s.pins.adjustmentsThrough).toISOString(),
    },
    policy: {
      minPlaySeconds: s.policy.minPlaySeconds,
      minTrailingStreams: s.policy.minTrailingStreams,
      trailingMonths: s.policy.trailingMonths,
      botRule: s.policy.botRule,
      botShortPlaySeconds: s.policy.botShortPlaySeconds,
      botWindowSeconds: s.policy.botWindowSeconds,
      botMinShortPlays: s.policy.botMinShortPlays,
      rounding: s.policy.rounding,
    },
    currencies: [...s.currencies]
      .sort((a, b) => cmp(a.currency, b.currency))
      .map((c) => ({
        currency: c.currency,
        artists: c.artists,
        lines: c.lines,
        plays: c.plays,
        amount: c.amount,
        adjustment: c.adjustment,
        payable: c.payable,
      })),
    excluded: { botPlays: s.excluded.botPlays, belowThresholdPlays: s.excluded.belowThresholdPlays },
    held: [...s.held]
      .sort((a, b) => cmp(a.kind, b.kind) || cmp(a.subject, b.subject))
      .map((h) => ({ kind: h.kind, subject: h.subject, plays: h.plays, detail: h.detail })),
    artists: [...s.artists]
      .sort((a, b) => cmp(a.artistId, b.artistId) || cmp(a.currency, b.currency))
      .map((a) => ({
        artistId: a.artistId,
        file: artistFile(a.artistId),
        currency: a.currency,
        lines: a.lines,
        plays: a.plays,
        exact: a.exact,
        amount: a.amount,
        adjustment: a.adjustment,
        payable: a.payable,
      })),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Plain code-unit order (the same as PostgreSQL's byte order for the ASCII IDs and codes used here). */
export const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
