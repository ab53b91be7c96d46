import type { ClickHouseClient } from '@clickhouse/client';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

/**
 * Copies the catalog, campaign and user dimensions from PostgreSQL into ClickHouse for the joins of
 * the analytics queries. Idempotent: rows carry a version (this refresh's time) and ReplacingMergeTree
 * keeps the newest, so a retried or repeated refresh converges to the same table.
 */

const PAGE = 20_000;

async function copyPaged<R extends { id: string }>(
  pool: DatabasePool,
  page: (after: string) => Promise<readonly R[]>,
  insert: (rows: readonly R[]) => Promise<void>,
): Promise<number> {
  let after = '00000000-0000-0000-0000-000000000000';
  let total = 0;
  for (;;) {
    const rows = await page(after);
    if (!rows.length) return total;
    await insert(rows);
    total += rows.length;
    after = (rows.at(-1) as R).id;
  }
}

const TrackRow = z.object({
  id: z.string(),
  artist_id: z.string(),
  album_id: z.string(),
  duration_ms: z.number(),
  release_date: z.string(),
  status: z.string(),
});
const CampaignRow = z.object({
  id: z.string(),
  campaign_type: z.string(),
  promoted_artist_id: z.string().nullable(),
  start_date: z.string(),
  end_date: z.string(),
});
const UserRow = z.object({ id: z.string(), signup_date: z.string(), country: z.string(), tier: z.string() });

export async function refreshDimensions(
  pool: DatabasePool,
  ch: ClickHouseClient,
  version = Date.now(),
): Promise<{ tracks: number; campaigns: number; users: number }> {
  const insert = (table: string) => async (values: readonly Record<string, unknown>[]) => {
    await ch.insert({
      table,
      values: values.map(({ id: _id, ...rest }) => ({ ...rest, version })),
      format: 'JSONEachRow',
    });
  };
  const tracks = await copyPaged(
    pool,
    (after) =>
      pool.any(sql.type(TrackRow)`
        SELECT track_id::text AS id, artist_id::text AS artist_id, album_id::text AS album_id, duration_ms, release_date::text AS release_date, status
        FROM tracks WHERE track_id > ${after}::uuid ORDER BY track_id LIMIT ${PAGE}`),
    async (rows) => insert('dim_tracks')(rows.map((r) => ({ ...r, track_id: r.id }))),
  );
  const campaigns = await copyPaged(
    pool,
    (after) =>
      pool.any(sql.type(CampaignRow)`
        SELECT campaign_id::text AS id, campaign_type, promoted_artist_id::text AS promoted_artist_id,
               start_date::text AS start_date, end_date::text AS end_date
        FROM ad_campaigns WHERE campaign_id > ${after}::uuid ORDER BY campaign_id LIMIT ${PAGE}`),
    async (rows) =>
      insert('dim_campaigns')(
        rows.map((r) => ({
          ...r,
          campaign_id: r.id,
          promoted_artist_id: r.promoted_artist_id ?? '00000000-0000-0000-0000-000000000000',
        })),
      ),
  );
  const users = await copyPaged(
    pool,
    (after) =>
      pool.any(sql.type(UserRow)`
        SELECT user_id::text AS id, (created_at AT TIME ZONE 'UTC')::date::text AS signup_date, country, tier
        FROM users WHERE user_id > ${after}::uuid AND erased_at IS NULL ORDER BY user_id LIMIT ${PAGE}`),
    async (rows) => insert('dim_users')(rows.map((r) => ({ ...r, user_id: r.id }))),
  );
  return { tracks, campaigns, users };
}
