import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

/** The PostgreSQL halves of the appendix queries (1A, 2A, 5A, 5B). Money stays NUMERIC, returned as text. */

/** 1A: premium listeners in the given countries. */
export async function premiumUsersIn(pool: DatabasePool, countries: string[], limit = 1000) {
  return pool.any(sql.type(z.object({ user_id: z.string(), plan: z.string(), country: z.string() }))`
    SELECT u.user_id::text AS user_id, s.plan, s.country::text AS country
    FROM users u
    JOIN subscriptions s USING (user_id)
    WHERE u.tier = 'premium' AND u.erased_at IS NULL
      AND s.status IN ('active', 'past_due')
      AND s.country = ANY(${sql.array(countries, 'bpchar')})
    ORDER BY s.country, u.user_id
    LIMIT ${limit}`);
}

/** 2A: users seen from at least `minCountries` countries in the 30 days before `at`. */
export async function accountSharing(pool: DatabasePool, at: Date, minCountries = 3, limit = 1000) {
  return pool.any(sql.type(z.object({ user_id: z.string(), unique_countries_30d: z.number() }))`
    SELECT user_id::text AS user_id, count(DISTINCT ip_country)::int AS unique_countries_30d
    FROM session_logs
    WHERE started_at >= ${at.toISOString()}::timestamptz - interval '30 days' AND started_at < ${at.toISOString()}::timestamptz
    GROUP BY user_id
    HAVING count(DISTINCT ip_country) >= ${minCountries}
    ORDER BY unique_countries_30d DESC, user_id
    LIMIT ${limit}`);
}

export interface PlaysRow {
  artist_id: string;
  track_id: string;
  country: string;
  plays: number | string;
}

const RoyaltyLine = z.object({
  artist_id: z.string(),
  track_id: z.string(),
  country: z.string(),
  plays: z.number(),
  rate_per_play: z.string(),
  currency: z.string(),
  royalty_amount: z.string(),
});
export type RoyaltyLine = z.infer<typeof RoyaltyLine>;

/** The plays rows as a relation PostgreSQL can join (unnest of parallel arrays). */
const playsRelation = (rows: readonly PlaysRow[]) => sql.fragment`
  unnest(${sql.array(
    rows.map((r) => r.artist_id),
    'uuid',
  )}, ${sql.array(
    rows.map((r) => r.track_id),
    'uuid',
  )},
         ${sql.array(
           rows.map((r) => r.country),
           'bpchar',
         )}, ${sql.array(
           rows.map((r) => Number(r.plays)),
           'int8',
         )})
    AS p(artist_id, track_id, country, plays)`;

/** 5A: royalty per artist/track/country = plays × the rate in force on the first day of the month. */
export async function royaltyLines(
  pool: DatabasePool,
  month: string,
  rows: readonly PlaysRow[],
): Promise<readonly RoyaltyLine[]> {
  if (!rows.length) return [];
  return pool.any(sql.type(RoyaltyLine)`
    SELECT p.artist_id::text AS artist_id, p.track_id::text AS track_id, p.country::text AS country, p.plays::int AS plays,
           r.rate_per_play::text AS rate_per_play, r.currency::text AS currency,
           (p.plays * r.rate_per_play)::text AS royalty_amount
    FROM ${playsRelation(rows)}
    JOIN LATERAL (
      SELECT rate_per_play, currency FROM royalty_rates r
      WHERE r.artist_id = p.artist_id AND r.country = p.country
        AND r.effective_from <= ${month}::date AND (r.effective_to IS NULL OR r.effective_to > ${month}::date)
      ORDER BY r.effective_from DESC
      LIMIT 1
    ) r ON true
    ORDER BY p.artist_id, p.track_id, p.country`);
}

const Divergence = z.object({
  artist_id: z.string(),
  total_plays: z.number(),
  expected: z.string(),
  total_paid: z.string(),
  divergence: z.string(),
});

/**
 * 5B: artists whose approved payout for the month differs from plays × rate by more than `tolerance`
 * (relative) — and by more than half a cent, so rounding a payout to the cent is never a divergence.
 */
export async function payoutDivergence(
  pool: DatabasePool,
  month: string,
  rows: readonly PlaysRow[],
  tolerance = '0.01',
) {
  if (!rows.length) return [];
  return pool.any(sql.type(Divergence)`
    SELECT e.artist_id::text AS artist_id, e.total_plays::int AS total_plays, round(e.expected, 2)::text AS expected,
           ap.amount::text AS total_paid, round(abs(ap.amount - e.expected) / e.expected, 4)::text AS divergence
    FROM (
      SELECT p.artist_id, sum(p.plays) AS total_plays, sum(p.plays * r.rate_per_play) AS expected
      FROM ${playsRelation(rows)}
      JOIN royalty_rates r ON r.artist_id = p.artist_id AND r.country = p.country
        AND r.effective_from <= ${month}::date AND (r.effective_to IS NULL OR r.effective_to > ${month}::date)
      GROUP BY p.artist_id
    ) e
    JOIN artist_payouts ap ON ap.artist_id = e.artist_id
    JOIN settlement_runs sr ON sr.run_id = ap.run_id AND sr.month = ${month}::date AND sr.status = 'approved'
    WHERE e.expected > 0 AND abs(ap.amount - e.expected) > 0.005
      AND abs(ap.amount - e.expected) / e.expected > ${tolerance}::numeric
    ORDER BY divergence DESC, e.artist_id`);
}
