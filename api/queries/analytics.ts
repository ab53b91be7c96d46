import { ch, type ChFragment } from '../../lib/clickhouse-sql';

/**
 * The source architecture's query proposals (appendix of the data-model issue), as ClickHouse SQL
 * within the 18.16 subset (DESIGN §4): at most one JOIN per SELECT, no CTEs, no window functions,
 * every joined subquery named (current releases require the alias; 18.16 accepts it), and ALL joins
 * against right sides with unique keys: ANY INNER JOIN means something else in current releases
 * (one row per key from both sides), which the chdb test caught.
 * Each builder binds its values through the one binder; tests run the same text on 18.16 and chdb.
 *
 * Listened time is distinct ticks × 5 s, so "shorter than 30 s" is fewer than 6 ticks and
 * "shorter than 15 s" fewer than 3.
 */

export const TICK_SECONDS = 5;
export const ROYALTY_MIN_TICKS = 6;

const day = (d: Date) => d.toISOString().slice(0, 10);

/** 1A (ClickHouse part): the top countries by plays since `from`. */
export function topCountriesByPlays(from: Date, limit = 5): ChFragment {
  return ch`
    SELECT country, uniqExact(play_id) AS plays
    FROM plays
    WHERE day >= toDate(${day(from)})
    GROUP BY country
    ORDER BY plays DESC, country
    LIMIT ${limit}`;
}

/** 3A: users who signed up since `from` with more than 5 plays, and how many of those were under 30 s. */
export function earlyChurn(from: Date, limit = 1000): ChFragment {
  return ch`
    SELECT toString(user_id) AS user_id, count() AS total_plays, countIf(ticks < ${ROYALTY_MIN_TICKS}) AS short_plays
    FROM (
      SELECT play_id, user_id, uniqExactMerge(ticks) AS ticks
      FROM plays
      WHERE day >= toDate(${day(from)})
        AND user_id IN (SELECT user_id FROM dim_users FINAL WHERE signup_date >= toDate(${day(from)}))
      GROUP BY play_id, user_id
    )
    GROUP BY user_id
    HAVING total_plays > 5
    ORDER BY short_plays DESC, user_id
    LIMIT ${limit}`;
}

/** 3B: a user's plays in the ten minutes before `at` that lasted under 15 s (rapid skips). */
export function rapidSkips(userId: string, at: Date): ChFragment {
  return ch`
    SELECT toString(play_id) AS play_id, toString(track_id) AS track_id, min(event_time) AS started_at,
           uniqExact(event_id) * ${TICK_SECONDS} AS listened_s
    FROM play_ticks
    PREWHERE user_id = toUUID(${userId})
    WHERE event_time > ${new Date(at.getTime() - 600_000)} AND event_time <= ${at}
    GROUP BY play_id, track_id
    HAVING listened_s < 15
    ORDER BY started_at, play_id`;
}

/** 4A: retention by cohort — the day a user was first seen × each later day active → distinct users. */
export function retentionCohorts(from: Date): ChFragment {
  return ch`
    SELECT cohort_date, day AS activity_date, uniqExact(user_id) AS active_users
    FROM (SELECT DISTINCT user_id, day FROM plays WHERE day >= toDate(${day(from)})) AS activity
    ALL INNER JOIN (SELECT user_id, min(day) AS cohort_date FROM plays GROUP BY user_id) AS cohorts USING user_id
    WHERE cohort_date >= toDate(${day(from)})
    GROUP BY cohort_date, activity_date
    ORDER BY cohort_date, activity_date`;
}

/** 4B: plays per artist and track during each promotional campaign of that artist. */
export function campaignAttribution(): ChFragment {
  return ch`
    SELECT toString(campaign_id) AS campaign_id, toString(artist_id) AS artist_id, toString(track_id) AS track_id,
           sum(plays) AS plays_during_campaign
    FROM (
      SELECT campaign_id, artist_id, track_id, day, plays, start_date, end_date
      FROM (
        SELECT track_id, day, plays, artist_id
        FROM (SELECT track_id, day, uniqExact(play_id) AS plays FROM plays GROUP BY track_id, day) AS daily
        ALL INNER JOIN (SELECT track_id, artist_id FROM dim_tracks FINAL) AS tracks USING track_id
      ) AS track_days
      ALL INNER JOIN (
        SELECT promoted_artist_id AS artist_id, campaign_id, start_date, end_date
        FROM dim_campaigns FINAL
        WHERE campaign_type = 'promotional'
      ) AS campaigns USING artist_id
    )
    WHERE day >= start_date AND day <= end_date
    GROUP BY campaign_id, artist_id, track_id
    ORDER BY campaign_id, plays_during_campaign DESC, track_id`;
}

/**
 * 5A / 5B (ClickHouse part): royalty-bearing plays per artist, track and country for the plays that
 * started in [from, to). A play crossing midnight has a row per day: its ticks are merged first, and
 * the day before `from` is read too, so a play that began just before the month is not mistaken
 * for one that began in it.
 */
export function royaltyBearingPlays(from: Date, to: Date): ChFragment {
  return ch`
    SELECT toString(artist_id) AS artist_id, toString(track_id) AS track_id, country, plays
    FROM (
      SELECT artist_id, track_id, country, plays
      FROM (
        SELECT track_id, country, count() AS plays
        FROM (
          SELECT track_id, play_id, country, minMerge(started_at) AS started, uniqExactMerge(ticks) AS ticks
          FROM plays
          WHERE day >= toDate(${day(from)}) - 1 AND day <= toDate(${day(to)})
          GROUP BY track_id, play_id, country
        )
        WHERE ticks >= ${ROYALTY_MIN_TICKS} AND started >= ${from} AND started < ${to}
        GROUP BY track_id, country
      ) AS bearing
      ALL INNER JOIN (SELECT track_id, artist_id FROM dim_tracks FINAL) AS tracks USING track_id
    )
    ORDER BY artist_id, track_id, country`;
}

/** Creator stats: plays per day and country for one artist's tracks in [from, to] (days, inclusive). */
export function artistDailyPlays(artistId: string, from: Date, to: Date): ChFragment {
  return ch`
    SELECT toString(day) AS day, country, sum(track_plays) AS plays
    FROM (
      SELECT day, country, track_id, uniqExact(play_id) AS track_plays
      FROM plays
      WHERE day >= toDate(${day(from)}) AND day <= toDate(${day(to)})
        AND track_id IN (SELECT track_id FROM dim_tracks FINAL WHERE artist_id = toUUID(${artistId}))
      GROUP BY day, country, track_id
    )
    GROUP BY day, country
    ORDER BY day, country`;
}

/** Creator stats: distinct listeners and royalty-bearing plays of one artist's tracks in [from, to]. */
export function artistTotals(artistId: string, from: Date, to: Date): ChFragment {
  return ch`
    SELECT
      (SELECT uniqExact(user_id) FROM plays
        WHERE day >= toDate(${day(from)}) AND day <= toDate(${day(to)})
          AND track_id IN (SELECT track_id FROM dim_tracks FINAL WHERE artist_id = toUUID(${artistId}))) AS unique_listeners,
      (SELECT count() FROM (
         SELECT play_id, minMerge(started_at) AS started, uniqExactMerge(ticks) AS ticks
         FROM plays
         WHERE day >= toDate(${day(from)}) - 1 AND day <= toDate(${day(to)})
           AND track_id IN (SELECT track_id FROM dim_tracks FINAL WHERE artist_id = toUUID(${artistId}))
         GROUP BY play_id
       ) WHERE ticks >= ${ROYALTY_MIN_TICKS} AND toDate(started) >= toDate(${day(from)}) AND toDate(started) <= toDate(${day(to)})) AS royalty_bearing_plays`;
}
