import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { monthDate } from '../../domain/royalties/pins';
import type { ShardInput, ShardResult } from '../../workflows/royalties/contract';
import { Progress } from './heartbeat';
import { loadRun } from './runs';

/**
 * Payouts of one artist shard, in one PostgreSQL statement and one transaction: every line priced at the
 * rate its pinned version has in force for the month, the cents allocated per artist and currency by
 * the policy's rule (domain/royalties/allocation.ts says it in TypeScript; the unit tests hold the two
 * together), corrections carried into the month added per artist, and what cannot be priced recorded
 * as exceptions that hold the run. A shard whose transaction committed has its row in
 * settlement_run_shards: a retry finds it and does nothing.
 *
 * Rates: for each (artist, country, effective_from) the row of the newest version at or below the pin;
 * of those in force on the month's first day, the latest effective_from wins. Two in force in different
 * currencies is a currency mismatch (which one to pay is a person's decision).
 */

const Done = z.object({ artists: z.number(), lines: z.number(), held_lines: z.number() });

/** An artist's shard: the last byte of its UUID, so shard membership never depends on a hash function's version. */
const shardOf = (column: ReturnType<typeof sql.identifier>, shards: number, shard: number) =>
  sql.fragment`get_byte(uuid_send(${column}), 15) % ${shards} = ${shard}`;

export function createPayoutActivities(deps: { pool: DatabasePool }) {
  const { pool } = deps;

  async function computeShardPayouts(input: ShardInput): Promise<ShardResult> {
    const progress = new Progress('payouts');
    progress.update({ shard: input.shard });
    try {
      return await shardPayouts(input);
    } finally {
      progress.stop();
    }
  }

  async function shardPayouts(input: ShardInput): Promise<ShardResult> {
    const { runId, snapshotRunId, shard, shards } = input;
    return pool.transaction(async (tx) => {
      const done = await tx.maybeOne(sql.type(Done)`
        SELECT artists, lines, held_lines FROM settlement_run_shards WHERE run_id = ${runId} AND shard = ${shard}`);
      if (done) return { shard, artists: done.artists, lines: done.lines, heldLines: done.held_lines };
      const run = await loadRun(tx, runId);
      if (run.status !== 'running') return { shard, artists: 0, lines: 0, heldLines: 0 };
      // One bulk statement over a snapshot written moments ago (its statistics not gathered yet): hash
      // joins and memory for the window sorts, whatever the planner would guess from stale statistics.
      await tx.query(sql.unsafe`SET LOCAL enable_nestloop = off`);
      await tx.query(sql.unsafe`SET LOCAL work_mem = '128MB'`);
      // A shard of a large catalogue may take longer than the pool's default limit for one statement.
      await tx.query(sql.unsafe`SET LOCAL statement_timeout = '30min'`);
      const month = monthDate(run.month);
      const artist = sql.identifier(['artist_id']);
      const counts = await tx.one(sql.type(Done)`
        WITH lines AS (
          SELECT artist_id, track_id, country, plays FROM settlement_snapshot_lines
          WHERE run_id = ${snapshotRunId} AND artist_id IS NOT NULL AND plays > 0 AND ${shardOf(artist, shards, shard)}
        ),
        candidates AS (
          SELECT DISTINCT ON (artist_id, country, effective_from)
                 artist_id, country, effective_from, effective_to, rate_per_play, currency
          FROM royalty_rates
          WHERE rate_version <= ${run.rate_version} AND effective_from <= ${month}::date AND ${shardOf(artist, shards, shard)}
          ORDER BY artist_id, country, effective_from, rate_version DESC
        ),
        resolved AS (
          SELECT artist_id, country, count(DISTINCT currency) AS currencies,
                 (array_agg(rate_per_play ORDER BY effective_from DESC))[1] AS rate,
                 (array_agg(currency ORDER BY effective_from DESC))[1] AS currency,
                 string_agg(DISTINCT currency, ', ') AS all_currencies
          FROM candidates
          WHERE effective_to IS NULL OR effective_to > ${month}::date
          GROUP BY artist_id, country
        ),
        priced AS (
          SELECT l.artist_id, l.track_id, l.country, l.plays, r.rate, r.currency, r.currencies, r.all_currencies
          FROM lines l LEFT JOIN resolved r ON r.artist_id = l.artist_id AND r.country = l.country
        ),
        ranked AS (
          SELECT artist_id, track_id, country, plays, rate, currency, plays * rate AS exact_amount,
                 trunc(plays * rate, 2) AS floor_amount,
                 (round(sum(plays * rate) OVER artist_currency, 2) - sum(trunc(plays * rate, 2)) OVER artist_currency) * 100
                   AS missing_cents,
                 row_number() OVER (PARTITION BY artist_id, currency
                                    ORDER BY plays * rate - trunc(plays * rate, 2) DESC, track_id, country) AS place
          FROM priced
          WHERE currencies = 1
          WINDOW artist_currency AS (PARTITION BY artist_id, currency)
        ),
        paid_lines AS (
          INSERT INTO payout_lines (run_id, artist_id, track_id, country, plays, rate_per_play, currency, exact_amount, amount)
          SELECT ${runId}, artist_id, track_id, country, plays, rate, currency, exact_amount,
                 floor_amount + CASE WHEN place <= missing_cents THEN 0.01 ELSE 0 END
          FROM ranked
          RETURNING artist_id, currency, plays, exact_amount, amount
        ),
        held AS (
          INSERT INTO settlement_exceptions (run_id, kind, subject, artist_id, country, plays, holds, detail)
          SELECT ${runId}, CASE WHEN rate IS NULL THEN 'missing_rate' ELSE 'currency_mismatch' END,
                 artist_id || '/' || country, artist_id, country, sum(plays), true,
                 CASE WHEN rate IS NULL
                      THEN 'no rate in force for this artist and country in rate version ' || ${run.rate_version}
                      ELSE 'rates in force in ' || min(all_currencies) || ' for this artist and country in rate version ' || ${run.rate_version}
                 END || ' (' || count(*) || ' tracks)'
          FROM priced
          WHERE rate IS NULL OR currencies > 1
          GROUP BY artist_id, country, rate IS NULL
          RETURNING plays
        ),
        carried AS (
          SELECT artist_id, currency, sum(amount) AS adjustment FROM settlement_adjustments
          WHERE target_month = ${month}::date AND created_at <= ${run.adjustments_through}::timestamptz
            AND ${shardOf(artist, shards, shard)}
          GROUP BY artist_id, currency
        ),
        earned AS (
          SELECT artist_id, currency, sum(plays) AS plays, sum(exact_amount) AS exact_amount, sum(amount) AS amount,
                 count(*) AS lines
          FROM paid_lines GROUP BY artist_id, currency
        ),
        payouts AS (
          INSERT INTO artist_payouts (run_id, artist_id, currency, plays, exact_amount, amount, adjustment, lines)
          SELECT ${runId}, coalesce(e.artist_id, c.artist_id), coalesce(e.currency, c.currency), coalesce(e.plays, 0),
                 coalesce(e.exact_amount, 0), coalesce(e.amount, 0), coalesce(c.adjustment, 0), coalesce(e.lines, 0)
          FROM earned e FULL JOIN carried c ON c.artist_id = e.artist_id AND c.currency = e.currency
          RETURNING 1
        )
        SELECT (SELECT count(*) FROM payouts)::int AS artists, (SELECT count(*) FROM paid_lines)::int AS lines,
               (SELECT count(*) FROM held)::int AS held_lines`);
      let heldLines = counts.held_lines;
      if (shard === 0) {
        // Tracks the catalog does not know have no artist and so no shard: the first shard reports them.
        heldLines += await tx.oneFirst(sql.type(z.object({ n: z.number() }))`
          WITH written AS (
            INSERT INTO settlement_exceptions (run_id, kind, subject, track_id, plays, holds, detail)
            SELECT ${runId}, 'unknown_track', track_id::text, track_id, sum(plays), true,
                   'the catalog has no track with this ID (' || count(*) || ' countries)'
            FROM settlement_snapshot_lines
            WHERE run_id = ${snapshotRunId} AND artist_id IS NULL AND plays > 0
            GROUP BY track_id
            RETURNING 1)
          SELECT count(*)::int AS n FROM written`);
      }
      await tx.query(sql.unsafe`
        INSERT INTO settlement_run_shards (run_id, shard, artists, lines, held_lines)
        VALUES (${runId}, ${shard}, ${counts.artists}, ${counts.lines}, ${heldLines})`);
      return { shard, artists: counts.artists, lines: counts.lines, heldLines };
    });
  }

  return { computeShardPayouts };
}
