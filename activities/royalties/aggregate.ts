import { ch, type ChFragment } from '../../lib/clickhouse-sql';
import { monthEnd, monthStart, type Month } from '../../domain/royalties/pins';
import { minRoyaltyTicks, shortPlayTicks, type Policy } from '../../domain/royalties/policy';

/**
 * The settlement's ClickHouse aggregation under a run's pins: royalty-bearing plays per track and country,
 * with the track's artist, in one statement within DESIGN §4's subset (18.16 and current releases; the
 * chdb test runs it on both).
 *
 * - A play belongs to the month it started in; its ticks are merged over its rows (a row per play, day
 *   and ingestion hour), reading the day before the month too, so a play that began just before the
 *   month is not taken for one that began in it.
 * - Only ticks first ingested before the cut-off count (`ingested_hour < cutoff`; the cut-off is a whole
 *   hour). A tick delivered again later is the same event ID in a uniqExact state: it adds nothing.
 * - A play is royalty-bearing from the policy's minimum listened time (ticks × 5 s).
 * - Bot plays (the policy's burst rule) and plays of tracks under the trailing-streams minimum are counted
 *   apart, not paid.
 * - The artist comes from `dim_tracks` (refreshed from the catalog just before); a track it does not know
 *   gets NULL, an "unknown track" exception downstream.
 * Rows come ordered by track and country, as TabSeparated in the column order of the snapshot table.
 */

/**
 * A month of plays is grouped by play (tens of millions of rows with their tick sets): past this much memory
 * the grouping spills to disk instead of failing at the server's per-query limit (4 GB on the native stack).
 */
export const AGGREGATION_SETTINGS = { max_bytes_before_external_group_by: '1500000000' } as const;

const NO_ARTIST = '00000000-0000-0000-0000-000000000000';

/** Plays started in [from, to) with their merged ticks, from the rows ingested before the cut-off. */
function playsStarted(from: Date, to: Date, cutoff: Date, columns: ChFragment): ChFragment {
  return ch`
    SELECT ${columns}, minMerge(started_at) AS started, uniqExactMerge(ticks) AS ticks
    FROM plays
    WHERE day >= toDate(${from}) - 1 AND day <= toDate(${to}) AND ingested_hour < ${cutoff}
    GROUP BY ${columns}`;
}

export interface AggregationPins {
  month: Month;
  ingestionCutoff: string;
}

/** Listeners whose plays the bot rule excludes for the month. */
function botListeners(policy: Policy, from: Date, to: Date, cutoff: Date): ChFragment {
  return ch`
    SELECT user_id FROM (
      SELECT user_id, intDiv(toUInt32(started), ${policy.botWindowSeconds}) AS burst, count() AS short_plays
      FROM (${playsStarted(from, to, cutoff, ch`play_id, user_id`)})
      WHERE ticks < ${shortPlayTicks(policy)} AND started >= ${from} AND started < ${to}
      GROUP BY user_id, burst
      HAVING short_plays >= ${policy.botMinShortPlays}
    )`;
}

/** Tracks with at least the policy's minimum of royalty-bearing plays in the trailing months. */
function eligibleTracks(policy: Policy, month: Month, to: Date, cutoff: Date): ChFragment {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const from = new Date(Date.UTC(y, m - policy.trailingMonths, 1));
  return ch`
    SELECT track_id FROM (${playsStarted(from, to, cutoff, ch`track_id, play_id`)})
    WHERE ticks >= ${minRoyaltyTicks(policy)} AND started >= ${from} AND started < ${to}
    GROUP BY track_id
    HAVING count() >= ${policy.minTrailingStreams}`;
}

/**
 * Columns: track_id, artist_id (\N when unknown), country, plays, bot_plays, below_threshold_plays —
 * the snapshot table's, so the rows go into PostgreSQL's COPY as they are.
 */
export function settlementAggregation(pins: AggregationPins, policy: Policy): ChFragment {
  const from = new Date(monthStart(pins.month));
  const to = new Date(monthEnd(pins.month));
  const cutoff = new Date(pins.ingestionCutoff);
  const bot = policy.botRule === 'none' ? ch`0` : ch`user_id IN (${botListeners(policy, from, to, cutoff)})`;
  const eligible =
    policy.minTrailingStreams === 0
      ? ch`1`
      : ch`track_id IN (${eligibleTracks(policy, pins.month, to, cutoff)})`;
  return ch`
    SELECT track_id, if(artist = toUUID(${NO_ARTIST}), NULL, artist) AS artist_id, country,
           plays, bot_plays, below_threshold_plays
    FROM (
      SELECT track_id, country,
             countIf(eligible AND NOT bot) AS plays,
             countIf(eligible AND bot) AS bot_plays,
             countIf(NOT eligible) AS below_threshold_plays
      FROM (
        SELECT track_id, country, ${bot} AS bot, ${eligible} AS eligible
        FROM (${playsStarted(from, to, cutoff, ch`track_id, play_id, user_id, country`)})
        WHERE ticks >= ${minRoyaltyTicks(policy)} AND started >= ${from} AND started < ${to}
      )
      GROUP BY track_id, country
    ) AS lines
    ALL LEFT JOIN (SELECT track_id, artist_id AS artist FROM dim_tracks FINAL) AS tracks USING track_id
    ORDER BY track_id, country`;
}

/** The floor of the benchmark: the same month's royalty-bearing plays per track and country, nothing else. */
export function bareAggregation(pins: AggregationPins, minTicks: number): ChFragment {
  const from = new Date(monthStart(pins.month));
  const to = new Date(monthEnd(pins.month));
  const cutoff = new Date(pins.ingestionCutoff);
  return ch`
    SELECT track_id, country, count() AS plays
    FROM (${playsStarted(from, to, cutoff, ch`track_id, play_id, country`)})
    WHERE ticks >= ${minTicks} AND started >= ${from} AND started < ${to}
    GROUP BY track_id, country`;
}
