import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

/**
 * A listener's recommendations as the recommendations job left them (user_recs), with each track's title and
 * artist from the catalog; tracks no longer available (taken down, or gone) are left out, in the job's order.
 */
const Row = z.object({
  track_id: z.string(),
  title: z.string(),
  artist_id: z.string(),
  artist: z.string(),
  score: z.number(),
});
const Exists = z.object({ ok: z.boolean() });

export async function recommendationsFor(pool: DatabasePool, userId: string) {
  const rows = await pool.any(sql.type(Row)`
    SELECT t.track_id::text AS track_id, t.title, a.artist_id::text AS artist_id, a.name AS artist,
      (rec.value ->> 'score')::int8 AS score
    FROM user_recs r
    CROSS JOIN LATERAL jsonb_array_elements(r.recs) WITH ORDINALITY AS rec(value, ord)
    JOIN tracks t ON t.track_id = (rec.value ->> 'trackId')::uuid AND t.status = 'available'
    JOIN artists a ON a.artist_id = t.artist_id
    WHERE r.user_id = ${userId}
    ORDER BY rec.ord`);
  const generatedAt = await pool.maybeOneFirst(sql.type(z.object({ at: z.string() }))`
    SELECT to_char(generated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS at
    FROM user_recs WHERE user_id = ${userId}`);
  return { generatedAt, tracks: rows };
}

/** Whether the user exists and is not erased (an erased user has no recommendations to show). */
export async function listenerExists(pool: DatabasePool, userId: string): Promise<boolean> {
  return pool.oneFirst(sql.type(Exists)`
    SELECT EXISTS (SELECT 1 FROM users WHERE user_id = ${userId} AND erased_at IS NULL) AS ok`);
}
