import { heartbeat, sleep } from '@temporalio/activity';
import type { ClickHouseClient } from '@clickhouse/client';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { ch, join } from '../../lib/clickhouse-sql';
import { chCount, chRows } from '../../lib/clients/clickhouse';
import type { DimensionRefreshInput, DimensionRefreshResult } from '../../workflows/ops/contract';
import { copyChangedDimensions } from '../analytics/dimensions';

/**
 * The incremental dimension refresh: rows of tracks, campaigns and users changed since the last watermark
 * (minus an overlap, for transactions that committed after a later one) are copied to ClickHouse, the rows
 * of users erased since then are deleted from `dim_users`, and the watermark moves to the instant the read
 * began. Idempotent: copies are versioned upserts, deletes of absent rows do nothing, and the watermark
 * only moves forward.
 */

export const DIMENSIONS_WATERMARK = 'dimensions';
const ERASED_BATCH = 1000;

const Instant = z.object({ at: z.string() });
const Watermark = z.object({ value: z.string() });
const Id = z.object({ user_id: z.string() });
const Present = z.object({ id: z.string() });
const Pending = z.object({ n: chCount });

const iso = sql.fragment`'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

export function createDimensionActivities(deps: { pool: DatabasePool; clickhouse: ClickHouseClient }) {
  const { pool, clickhouse } = deps;

  /** Deletes the given users' rows from dim_users and waits for the mutation (18.16 has no mutations_sync). */
  async function removeFromDimUsers(ids: readonly string[]): Promise<number> {
    let removed = 0;
    for (let i = 0; i < ids.length; i += ERASED_BATCH) {
      const batch = ids.slice(i, i + ERASED_BATCH);
      const uuids = join(
        batch.map((id) => ch`toUUID(${id})`),
        ', ',
      );
      const present = await chRows(
        clickhouse,
        ch`SELECT DISTINCT toString(user_id) AS id FROM dim_users WHERE user_id IN (${uuids})`,
        Present,
      );
      if (!present.length) continue;
      const doomed = join(
        present.map((r) => ch`toUUID(${r.id})`),
        ', ',
      );
      await clickhouse.command({ query: ch`ALTER TABLE dim_users DELETE WHERE user_id IN (${doomed})`.text });
      removed += present.length;
    }
    if (removed) {
      for (;;) {
        const [{ n } = { n: 0 }] = await chRows(
          clickhouse,
          ch`SELECT count() AS n FROM system.mutations
             WHERE database = currentDatabase() AND table = 'dim_users' AND is_done = 0`,
          Pending,
        );
        if (!n) break;
        heartbeat({ mutationsRunning: n });
        await sleep(200);
      }
    }
    return removed;
  }

  return {
    async refreshChangedDimensions(input: DimensionRefreshInput): Promise<DimensionRefreshResult> {
      // The read starts now (the database's clock): the next refresh goes on from here.
      const { at: until } = await pool.one(
        sql.type(Instant)`SELECT to_char(now() AT TIME ZONE 'UTC', ${iso}) AS at`,
      );
      // Read again from `overlap` before the watermark: a transaction may commit after a later one.
      const since = await pool.maybeOneFirst(sql.type(Watermark)`
        SELECT to_char((value - make_interval(secs => ${input.overlapSeconds})) AT TIME ZONE 'UTC', ${iso}) AS value
        FROM ops_watermarks WHERE name = ${DIMENSIONS_WATERMARK}`);
      const counts = await copyChangedDimensions(pool, clickhouse, {
        since,
        version: Date.now(),
        progress: (copied) => heartbeat({ copied }),
      });
      // Erasure pseudonymises the users row (updated_at moves), so the changed erased users are these.
      const erased = await pool.anyFirst(sql.type(Id)`
        SELECT user_id::text AS user_id FROM users
        WHERE erased_at IS NOT NULL AND updated_at >= ${since ?? '1970-01-01T00:00:00Z'}::timestamptz
        ORDER BY user_id`);
      const erasedUsersRemoved = await removeFromDimUsers(erased);
      await pool.query(sql.unsafe`
        INSERT INTO ops_watermarks (name, value) VALUES (${DIMENSIONS_WATERMARK}, ${until}::timestamptz)
        ON CONFLICT (name) DO UPDATE SET value = greatest(ops_watermarks.value, EXCLUDED.value), updated_at = now()`);
      return { since, until, ...counts, erasedUsersRemoved };
    },
  };
}
