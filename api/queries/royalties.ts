import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

/**
 * The royalties API's reads, from the PostgreSQL projection the settlement workflow keeps current: they
 * answer while the worker is down and after a run's history is past Temporal's retention. Money is the
 * decimal text PostgreSQL gives; IDs only, never names.
 */

const iso = z
  .union([z.number(), z.string()])
  .nullable()
  .transform((v) => (v === null ? null : new Date(v).toISOString()));

export const RunSummaryRow = z.object({
  run_id: z.string(),
  month: z.string(),
  workflow_id: z.string().nullable(),
  origin: z.string(),
  kind: z.string(),
  rerun: z.number(),
  status: z.string(),
  status_reason: z.string().nullable(),
  ingestion_cutoff: iso,
  rate_version: z.number(),
  policy_version: z.number().nullable(),
  code_version: z.number().nullable(),
  adjustments_through: iso,
  started_by: z.string(),
  reason: z.string().nullable(),
  created_at: iso,
  decided_at: iso,
  decided_by: z.string().nullable(),
  supersedes_run_id: z.string().nullable(),
  superseded_by: z.string().nullable(),
  verifies_run_id: z.string().nullable(),
  snapshot_run_id: z.string().nullable(),
  statement_sha256: z.string().nullable(),
  statement_key: z.string().nullable(),
  statement_bytes: z.number().nullable(),
  reproduced: z.boolean().nullable(),
  exceptions_count: z.number().nullable(),
  escalated: z.boolean(),
  reminded_at: iso,
  idempotency_key: z.string().nullable(),
  request_hash: z.string().nullable(),
});
export type RunSummaryRow = z.infer<typeof RunSummaryRow>;

const SUMMARY = sql.fragment`
  r.run_id::text AS run_id, to_char(r.month, 'YYYY-MM') AS month, r.workflow_id, r.origin, r.kind, r.rerun, r.status,
  r.status_reason, r.ingestion_cutoff, r.rate_version, r.policy_version, r.code_version, r.adjustments_through,
  r.started_by, r.reason, r.created_at, r.decided_at, r.decided_by, r.supersedes_run_id::text AS supersedes_run_id,
  coalesce(r.superseded_by,
           (SELECT c.run_id FROM settlement_runs c
            WHERE c.supersedes_run_id = r.run_id AND c.kind = 'correction' AND c.status = 'carried_forward'
            ORDER BY c.decided_at DESC LIMIT 1))::text AS superseded_by,
  r.verifies_run_id::text AS verifies_run_id, r.snapshot_run_id::text AS snapshot_run_id,
  r.statement_sha256, r.statement_key, r.statement_bytes, r.reproduced, r.exceptions_count, r.escalated,
  r.reminded_at, r.idempotency_key, r.request_hash`;

/** A month's runs, newest first (imported runs included). */
export function runsOfMonth(pool: DatabasePool, month: string) {
  return pool.any(sql.type(RunSummaryRow)`
    SELECT ${SUMMARY} FROM settlement_runs r
    WHERE r.month = ${`${month}-01`}::date
    ORDER BY r.created_at DESC, r.rerun DESC`);
}

export function runById(pool: DatabasePool, runId: string) {
  return pool.maybeOne(
    sql.type(RunSummaryRow)`SELECT ${SUMMARY} FROM settlement_runs r WHERE r.run_id = ${runId}`,
  );
}

const DetailRow = z.object({
  totals: z.unknown().nullable(),
  snapshot_stats: z.unknown().nullable(),
  reaggregation: z.unknown().nullable(),
  diff: z.unknown().nullable(),
  cross_check: z.unknown().nullable(),
  snapshot_sha256: z.string().nullable(),
});

export function runDetail(pool: DatabasePool, runId: string) {
  return pool.one(sql.type(DetailRow)`
    SELECT totals, snapshot_stats, reaggregation, diff, cross_check, snapshot_sha256
    FROM settlement_runs WHERE run_id = ${runId}`);
}

const PolicyRow = z.object({
  policy_version: z.number(),
  min_play_seconds: z.number(),
  min_trailing_streams: z.number(),
  trailing_months: z.number(),
  bot_rule: z.string(),
  bot_short_play_seconds: z.number(),
  bot_window_seconds: z.number(),
  bot_min_short_plays: z.number(),
  rounding: z.string(),
});

export function policy(pool: DatabasePool, version: number) {
  return pool.maybeOne(sql.type(PolicyRow)`
    SELECT policy_version, min_play_seconds, min_trailing_streams, trailing_months, bot_rule, bot_short_play_seconds,
           bot_window_seconds, bot_min_short_plays, rounding
    FROM royalty_policies WHERE policy_version = ${version}`);
}

/** Totals per currency from the payouts (for imported runs and runs still computing, which have no totals yet). */
export function currencyTotals(pool: DatabasePool, runId: string) {
  return pool.any(sql.type(
    z.object({
      currency: z.string(),
      artists: z.number(),
      lines: z.number(),
      plays: z.number(),
      amount: z.string(),
      adjustment: z.string(),
      payable: z.string(),
    }),
  )`
    SELECT currency::text AS currency, count(*)::int AS artists, sum(lines)::int AS lines, sum(plays)::bigint AS plays,
           sum(amount)::text AS amount, sum(adjustment)::text AS adjustment, sum(amount + adjustment)::text AS payable
    FROM artist_payouts WHERE run_id = ${runId} GROUP BY currency ORDER BY currency`);
}

export function exceptionsOf(pool: DatabasePool, runId: string, limit: number) {
  return pool.any(sql.type(
    z.object({
      kind: z.string(),
      subject: z.string(),
      artist_id: z.string().nullable(),
      track_id: z.string().nullable(),
      country: z.string().nullable(),
      currency: z.string().nullable(),
      plays: z.number(),
      holds: z.boolean(),
      detail: z.string(),
    }),
  )`
    SELECT kind, subject, artist_id::text AS artist_id, track_id::text AS track_id, country::text AS country,
           currency::text AS currency, plays, holds, detail
    FROM settlement_exceptions WHERE run_id = ${runId}
    ORDER BY holds DESC, kind, subject
    LIMIT ${limit}`);
}

const ArtistDiff = z.object({
  artist_id: z.string(),
  currency: z.string(),
  plays_before: z.number(),
  plays_after: z.number(),
  amount_before: z.string(),
  amount_after: z.string(),
  delta: z.string(),
});

const TrackDiff = z.object({
  artist_id: z.string(),
  track_id: z.string(),
  currency: z.string(),
  plays_before: z.number(),
  plays_after: z.number(),
  amount_before: z.string(),
  amount_after: z.string(),
  delta: z.string(),
});

/**
 * What changed from `against` to `runId`, per artist (and currency) and per artist and track: plays and
 * cents before and after, the largest changes first. Only what differs is listed.
 */
export async function runDiff(pool: DatabasePool, runId: string, against: string, limit: number) {
  const artists = await pool.any(sql.type(ArtistDiff)`
    SELECT coalesce(n.artist_id, o.artist_id)::text AS artist_id, coalesce(n.currency, o.currency)::text AS currency,
           coalesce(o.plays, 0)::bigint AS plays_before, coalesce(n.plays, 0)::bigint AS plays_after,
           coalesce(o.amount, 0)::text AS amount_before, coalesce(n.amount, 0)::text AS amount_after,
           (coalesce(n.amount, 0) - coalesce(o.amount, 0))::text AS delta
    FROM (SELECT artist_id, currency, plays, amount FROM artist_payouts WHERE run_id = ${runId}) n
    FULL JOIN (SELECT artist_id, currency, plays, amount FROM artist_payouts WHERE run_id = ${against}) o
      ON o.artist_id = n.artist_id AND o.currency = n.currency
    WHERE n.amount IS DISTINCT FROM o.amount OR n.plays IS DISTINCT FROM o.plays
    ORDER BY abs(coalesce(n.amount, 0) - coalesce(o.amount, 0)) DESC, 1, 2
    LIMIT ${limit + 1}`);
  const tracks = await pool.any(sql.type(TrackDiff)`
    WITH n AS (SELECT artist_id, track_id, currency, sum(plays) AS plays, sum(amount) AS amount
               FROM payout_lines WHERE run_id = ${runId} GROUP BY 1, 2, 3),
         o AS (SELECT artist_id, track_id, currency, sum(plays) AS plays, sum(amount) AS amount
               FROM payout_lines WHERE run_id = ${against} GROUP BY 1, 2, 3)
    SELECT coalesce(n.artist_id, o.artist_id)::text AS artist_id, coalesce(n.track_id, o.track_id)::text AS track_id,
           coalesce(n.currency, o.currency)::text AS currency,
           coalesce(o.plays, 0)::bigint AS plays_before, coalesce(n.plays, 0)::bigint AS plays_after,
           coalesce(o.amount, 0)::text AS amount_before, coalesce(n.amount, 0)::text AS amount_after,
           (coalesce(n.amount, 0) - coalesce(o.amount, 0))::text AS delta
    FROM n FULL JOIN o ON o.artist_id = n.artist_id AND o.track_id = n.track_id AND o.currency = n.currency
    WHERE n.amount IS DISTINCT FROM o.amount OR n.plays IS DISTINCT FROM o.plays
    ORDER BY abs(coalesce(n.amount, 0) - coalesce(o.amount, 0)) DESC, 1, 2, 3
    LIMIT ${limit + 1}`);
  return {
    artists: artists.slice(0, limit),
    tracks: tracks.slice(0, limit),
    truncated: artists.length > limit || tracks.length > limit,
  };
}
