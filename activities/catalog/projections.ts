import type { ClickHouseClient } from '@clickhouse/client';
import type { Client as OpenSearch } from '@opensearch-project/opensearch';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { ch } from '../../lib/clickhouse-sql';
import { indexAlias } from '../../lib/clients/opensearch';
import { deleteDocuments, idIn, readDocuments, writeDocuments } from './search-documents';

/**
 * A track's projections outside PostgreSQL: its search documents (track, album, artist) and its row in
 * ClickHouse's `dim_tracks`. Both are rebuilt from PostgreSQL on every call, so the calls are idempotent
 * and converge whatever their order (the outbox is the workflow: it calls these after each change).
 */
export interface ProjectionDeps {
  pool: DatabasePool;
  opensearch: OpenSearch;
  clickhouse: ClickHouseClient;
  indexPrefix: string;
}

const DimRow = z.object({
  track_id: z.string(),
  artist_id: z.string(),
  album_id: z.string(),
  duration_ms: z.number(),
  release_date: z.string(),
  status: z.string(),
  version: z.number(),
});

export function createProjectionActivities({ pool, opensearch, clickhouse, indexPrefix }: ProjectionDeps) {
  const alias = (name: 'tracks' | 'albums' | 'artists') => indexAlias(name, indexPrefix);

  return {
    /** The track's document and those of its album and artist (their counts include it). */
    async indexTrack(input: { trackId: string }): Promise<{ written: number }> {
      const tracks = await readDocuments(pool, 'tracks', idIn('tracks', [input.trackId]));
      const track = tracks[0];
      if (!track) return { written: 0 };
      const albumId = track.body.album_id as string;
      const artistId = track.body.artist_id as string;
      const [albums, artists] = await Promise.all([
        readDocuments(pool, 'albums', idIn('albums', [albumId])),
        readDocuments(pool, 'artists', idIn('artists', [artistId])),
      ]);
      const written = await Promise.all([
        writeDocuments(opensearch, alias('tracks'), tracks),
        writeDocuments(opensearch, alias('albums'), albums),
        writeDocuments(opensearch, alias('artists'), artists),
      ]);
      return { written: written.reduce((a, b) => a + b, 0) };
    },

    /** Compensation: the track's document goes; its album's goes too if the album went, else is rewritten. */
    async unindexTrack(input: {
      trackId: string;
      albumId: string;
      artistId: string;
      albumRemoved: boolean;
    }): Promise<void> {
      await deleteDocuments(opensearch, alias('tracks'), [input.trackId]);
      if (input.albumRemoved) await deleteDocuments(opensearch, alias('albums'), [input.albumId]);
      else
        await writeDocuments(
          opensearch,
          alias('albums'),
          await readDocuments(pool, 'albums', idIn('albums', [input.albumId])),
        );
      await writeDocuments(
        opensearch,
        alias('artists'),
        await readDocuments(pool, 'artists', idIn('artists', [input.artistId])),
      );
    },

    /**
     * The track's row in `dim_tracks`, versioned by the time it was read (ms, like refreshDimensions):
     * ReplacingMergeTree keeps the newest, so a retried or late upsert never undoes a newer one.
     */
    async upsertTrackDimension(input: { trackId: string }): Promise<void> {
      const row = await pool.maybeOne(sql.type(DimRow)`
        SELECT track_id::text, artist_id::text, album_id::text, duration_ms, release_date::text, status,
               (extract(epoch FROM statement_timestamp()) * 1000)::bigint AS version
        FROM tracks WHERE track_id = ${input.trackId}`);
      if (!row) return;
      await clickhouse.insert({ table: 'dim_tracks', values: [row], format: 'JSONEachRow' });
    },

    /** Compensation: a track that never made it into the catalog leaves no dimension row. */
    async removeTrackDimension(input: { trackId: string }): Promise<void> {
      await clickhouse.command({
        query: ch`ALTER TABLE dim_tracks DELETE WHERE track_id = toUUID(${input.trackId})`.text,
      });
    },
  };
}

export type ProjectionActivities = ReturnType<typeof createProjectionActivities>;
