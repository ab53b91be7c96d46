import { heartbeat } from '@temporalio/activity';
import type { ClickHouseClient } from '@clickhouse/client';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { ch, type ChFragment } from '../../lib/clickhouse-sql';
import { chCount, chRows } from '../../lib/clients/clickhouse';

/**
 * Recommendations from co-listening ("listeners who played this also played"), in ClickHouse within the
 * 18.16 subset (one JOIN per SELECT, nested subqueries, LIMIT BY):
 * 1. each listener's tracks in the window: royalty-bearing plays only (≥ 6 ticks, 30 s), so skips say nothing;
 * 2. a track's neighbours: the tracks most listeners of it also played, counted over each listener's 30 most
 *    played tracks (bounds the self-join), pairs shared by one listener only dropped as noise;
 * 3. a listener's recommendations: the neighbours of their tracks they have not played, scored by the sum of
 *    co-listeners. Ties are broken by the track ID's text (UUIDs sort by their bytes otherwise, which no
 *    reader would guess), so a re-run gives the same list.
 * The lists go to PostgreSQL `user_recs` (IDs and scores only), where the API reads them.
 */

export const ROYALTY_BEARING_TICKS = 6;
export const TRACKS_PER_LISTENER = 30;
export const MIN_CO_LISTENERS = 2;

/** Each listener's tracks (royalty-bearing plays since `from`), optionally one shard of the listeners. */
export function listenerTracks(from: Date, shard?: { shard: number; shards: number }): ChFragment {
  const inShard = shard ? ch`AND cityHash64(toString(user_id)) % ${shard.shards} = ${shard.shard}` : ch``;
  return ch`SELECT user_id, track_id, count() AS plays
    FROM (
      SELECT user_id, track_id, play_id FROM plays
      WHERE day >= toDate(${from}) ${inShard}
      GROUP BY user_id, track_id, play_id
      HAVING uniqExactMerge(ticks) >= ${ROYALTY_BEARING_TICKS}
    )
    GROUP BY user_id, track_id`;
}

/** A listener's most played tracks: the ones their neighbours and recommendations are computed from. */
const topTracks = (from: Date, shard?: { shard: number; shards: number }) =>
  ch`SELECT user_id, track_id FROM (${listenerTracks(from, shard)})
    ORDER BY user_id, plays DESC, toString(track_id) LIMIT ${TRACKS_PER_LISTENER} BY user_id`;

/** Every track's `neighbors` most co-listened tracks. */
export function trackNeighbors(from: Date, neighbors: number): ChFragment {
  return ch`SELECT track_id, neighbor, toUInt32(count()) AS listeners
    FROM (${topTracks(from)}) AS a
    ALL INNER JOIN (SELECT user_id, track_id AS neighbor FROM (${topTracks(from)})) AS b USING user_id
    WHERE track_id != neighbor
    GROUP BY track_id, neighbor
    HAVING listeners >= ${MIN_CO_LISTENERS}
    ORDER BY track_id, listeners DESC, toString(neighbor)
    LIMIT ${neighbors} BY track_id`;
}

/** One shard of listeners: their `perUser` best unplayed neighbours, best first. */
export function listenerRecommendations(
  runId: string,
  from: Date,
  perUser: number,
  shard: { shard: number; shards: number },
): ChFragment {
  return ch`SELECT toString(user_id) AS listener, toString(neighbor) AS recommended, toUInt64(sum(listeners)) AS score
    FROM (${topTracks(from, shard)}) AS mine
    ALL INNER JOIN (
      SELECT track_id, neighbor, listeners FROM track_neighbors WHERE run_id = ${runId}
    ) AS near USING track_id
    WHERE (user_id, neighbor) NOT IN (SELECT user_id, track_id FROM (${listenerTracks(from, shard)}))
    GROUP BY user_id, neighbor
    ORDER BY user_id, score DESC, recommended
    LIMIT ${perUser} BY user_id`;
}

const Count = z.object({ n: chCount });
const RunRow = z.object({ run_id: z.string() });
const RecRow = z.object({ listener: z.string(), recommended: z.string(), score: chCount });

export interface Recommendation {
  trackId: string;
  score: number;
}

const WRITE_BATCH = 2000;

export function createRecommendationActivities(deps: { pool: DatabasePool; clickhouse: ClickHouseClient }) {
  const { pool, clickhouse } = deps;
  const windowStart = (asOf: string, windowDays: number) =>
    new Date(Date.parse(asOf) - windowDays * 86_400_000);

  return {
    /** The run's neighbour table, replaced whole: a retry drops its partial partition first. */
    async computeTrackNeighbors(i: {
      runId: string;
      asOf: string;
      windowDays: number;
      neighbors: number;
    }): Promise<number> {
      await clickhouse.command({ query: ch`ALTER TABLE track_neighbors DROP PARTITION ${i.runId}`.text });
      heartbeat({ step: 'neighbors' });
      await clickhouse.command({
        query: ch`INSERT INTO track_neighbors (run_id, track_id, neighbor, listeners)
          SELECT ${i.runId}, track_id, neighbor, listeners
          FROM (${trackNeighbors(windowStart(i.asOf, i.windowDays), i.neighbors)})`.text,
      });
      const [row] = await chRows(
        clickhouse,
        ch`SELECT uniqExact(track_id) AS n FROM track_neighbors WHERE run_id = ${i.runId}`,
        Count,
      );
      return row?.n ?? 0;
    },

    /** One shard's listeners: their lists replace the old ones; erased or unknown users get none. */
    async recommendForShard(i: {
      runId: string;
      asOf: string;
      windowDays: number;
      perUser: number;
      shard: number;
      shards: number;
    }): Promise<number> {
      const rows = await chRows(
        clickhouse,
        listenerRecommendations(i.runId, windowStart(i.asOf, i.windowDays), i.perUser, i),
        RecRow,
      );
      const lists = new Map<string, Recommendation[]>();
      for (const r of rows) {
        const list = lists.get(r.listener) ?? [];
        list.push({ trackId: r.recommended, score: r.score });
        lists.set(r.listener, list);
      }
      const users = [...lists.keys()];
      let written = 0;
      for (let at = 0; at < users.length; at += WRITE_BATCH) {
        const batch = users.slice(at, at + WRITE_BATCH).map((u) => ({ user_id: u, recs: lists.get(u) }));
        const result = await pool.query(sql.unsafe`
          INSERT INTO user_recs (user_id, recs, generated_at)
          SELECT r.user_id, r.recs, ${i.asOf}::timestamptz
          FROM jsonb_to_recordset(${sql.jsonb(batch as unknown as Parameters<typeof sql.jsonb>[0])})
            AS r(user_id uuid, recs jsonb)
          JOIN users u ON u.user_id = r.user_id AND u.erased_at IS NULL
          ON CONFLICT (user_id) DO UPDATE SET recs = EXCLUDED.recs, generated_at = EXCLUDED.generated_at
          WHERE user_recs.generated_at <= EXCLUDED.generated_at`);
        written += result.rowCount;
        heartbeat({ shard: i.shard, written });
      }
      return written;
    },

    /** Neighbour tables of earlier runs are dropped whole, once this run has used its own. */
    async dropOldNeighborRuns(i: { keepRunId: string }): Promise<string[]> {
      const runs = await chRows(clickhouse, ch`SELECT DISTINCT run_id FROM track_neighbors`, RunRow);
      const old = runs.map((r) => r.run_id).filter((r) => r !== i.keepRunId);
      for (const run of old) {
        await clickhouse.command({ query: ch`ALTER TABLE track_neighbors DROP PARTITION ${run}`.text });
      }
      return old;
    },
  };
}
