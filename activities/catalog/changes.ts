import { ApplicationFailure } from '@temporalio/activity';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { CatalogFailure, type TrackChange } from '../../workflows/catalog/contract';

/**
 * Catalog changes after upload, in PostgreSQL: each change is applied with a row in `track_changes` under
 * the change's workflow ID, in one transaction, so a retried change is applied once and a late retry never
 * undoes a later change.
 */

const Status = z.object({ status: z.string() });

export function createChangeActivities({ pool }: { pool: DatabasePool }) {
  return {
    async applyTrackChange(input: {
      changeId: string;
      trackId: string;
      change: TrackChange;
    }): Promise<{ trackStatus: string; applied: boolean }> {
      const { change } = input;
      return pool.transaction(async (tx) => {
        const current = await tx.maybeOne(sql.type(Status)`
          SELECT status FROM tracks WHERE track_id = ${input.trackId} FOR UPDATE`);
        if (!current) {
          throw ApplicationFailure.nonRetryable(
            `No track ${input.trackId} in the catalog.`,
            CatalogFailure.TrackNotFound,
          );
        }
        const details =
          change.kind === 'edit' ? change.edit : change.kind === 'takedown' ? { reason: change.reason } : {};
        const fresh =
          (
            await tx.query(sql.unsafe`
              INSERT INTO track_changes (change_id, track_id, kind, details)
              VALUES (${input.changeId}, ${input.trackId}, ${change.kind}, ${sql.jsonb(details as never)})
              ON CONFLICT (change_id) DO NOTHING`)
          ).rowCount > 0;
        if (!fresh) return { trackStatus: current.status, applied: false };
        switch (change.kind) {
          case 'edit': {
            const e = change.edit;
            if (e.genres) {
              const unknown = await tx.anyFirst(sql.type(z.object({ g: z.string() }))`
                SELECT g FROM unnest(${sql.array(e.genres, 'text')}) g
                WHERE NOT EXISTS (SELECT 1 FROM genres WHERE genre_id = g)`);
              if (unknown.length) {
                throw ApplicationFailure.nonRetryable(
                  `Unknown genres: ${unknown.join(', ')}.`,
                  CatalogFailure.UnknownGenre,
                );
              }
              await tx.query(sql.unsafe`DELETE FROM track_genres WHERE track_id = ${input.trackId}`);
              await tx.query(sql.unsafe`
                INSERT INTO track_genres (track_id, genre_id, position)
                SELECT ${input.trackId}, g, (n - 1)::smallint FROM unnest(${sql.array(e.genres, 'text')}) WITH ORDINALITY AS x(g, n)`);
            }
            const territories =
              e.territories === undefined
                ? sql.fragment`territories`
                : e.territories === null || e.territories.length === 0
                  ? sql.fragment`NULL`
                  : sql.fragment`${sql.array(e.territories, 'bpchar')}`;
            await tx.query(sql.unsafe`
              UPDATE tracks
              SET title = coalesce(${e.title ?? null}, title), explicit = coalesce(${e.explicit ?? null}, explicit),
                  territories = ${territories}, updated_at = now()
              WHERE track_id = ${input.trackId}`);
            return { trackStatus: current.status, applied: true };
          }
          case 'takedown':
            await tx.query(sql.unsafe`
              UPDATE tracks
              SET status = 'taken_down', taken_down_reason = ${change.reason},
                  taken_down_at = coalesce(taken_down_at, now()), updated_at = now()
              WHERE track_id = ${input.trackId}`);
            return { trackStatus: 'taken_down', applied: true };
          case 'restore':
            await tx.query(sql.unsafe`
              UPDATE tracks
              SET status = 'available', taken_down_reason = NULL, taken_down_at = NULL, updated_at = now()
              WHERE track_id = ${input.trackId} AND status = 'taken_down'`);
            return {
              trackStatus: current.status === 'taken_down' ? 'available' : current.status,
              applied: true,
            };
        }
      });
    },
  };
}

export type ChangeActivities = ReturnType<typeof createChangeActivities>;
