import type { Client as OpenSearch } from '@opensearch-project/opensearch';
import { sql, type CommonQueryMethods, type FragmentSqlToken } from 'slonik';
import { z } from 'zod';
import type { SearchIndex } from '../../lib/clients/opensearch';

/**
 * Search documents are built from PostgreSQL, the catalog's source of truth, one way for every writer
 * (ingestion, catalog changes, the play-count sync, the re-index, the seed). Each document carries as its
 * version the moment its row was read (microseconds, PostgreSQL's statement time) and is written with
 * `version_type: external_gte`: whatever order writes reach OpenSearch in, the document read last wins, and
 * a writer that reads after the last commit always reads last — so the index converges on the database.
 */

const docVersion = sql.fragment`(extract(epoch FROM statement_timestamp()) * 1000000)::bigint`;
const iso = (column: FragmentSqlToken) => sql.fragment`to_json(${column}) #>> '{}'`;

const TrackDoc = z.object({
  track_id: z.string(),
  title: z.string(),
  artist_id: z.string(),
  artist_name: z.string(),
  album_id: z.string(),
  album_title: z.string(),
  isrc: z.string(),
  explicit: z.boolean(),
  duration_ms: z.number(),
  status: z.string(),
  play_count: z.number(),
  release_date: z.string(),
  genres: z.array(z.string()),
  territories: z.array(z.string()).nullable(),
  updated_at: z.string(),
  doc_version: z.number(),
});
const ArtistDoc = z.object({
  artist_id: z.string(),
  name: z.string(),
  country: z.string().nullable(),
  play_count: z.number(),
  track_count: z.number(),
  updated_at: z.string(),
  doc_version: z.number(),
});
const AlbumDoc = z.object({
  album_id: z.string(),
  title: z.string(),
  artist_id: z.string(),
  artist_name: z.string(),
  upc: z.string(),
  play_count: z.number(),
  track_count: z.number(),
  release_date: z.string(),
  updated_at: z.string(),
  doc_version: z.number(),
});
const PlaylistDoc = z.object({
  playlist_id: z.string(),
  title: z.string(),
  owner_id: z.string(),
  collaborative: z.boolean(),
  public: z.boolean(),
  track_count: z.number(),
  play_count: z.number(),
  created_at: z.string(),
  updated_at: z.string(),
  doc_version: z.number(),
});

export interface SearchDocument {
  id: string;
  version: number;
  body: Record<string, unknown>;
}

const ID_COLUMN: Record<SearchIndex, string> = {
  tracks: 'track_id',
  artists: 'artist_id',
  albums: 'album_id',
  playlists: 'playlist_id',
};

function asDocument<T extends { doc_version: number }>(id: string, row: T): SearchDocument {
  const { doc_version, ...body } = row;
  return { id, version: doc_version, body };
}

/** Documents of one index for the rows a condition selects (`where` names the index's own table alias). */
export async function readDocuments(
  db: CommonQueryMethods,
  index: SearchIndex,
  where: FragmentSqlToken,
  limit = 10_000,
): Promise<SearchDocument[]> {
  switch (index) {
    case 'tracks': {
      const rows = await db.any(sql.type(TrackDoc)`
        SELECT t.track_id::text, t.title, t.artist_id::text, ar.name AS artist_name, t.album_id::text,
               al.title AS album_title, t.isrc, t.explicit, t.duration_ms, t.status, t.play_count,
               t.release_date::text AS release_date,
               ARRAY(SELECT g.genre_id FROM track_genres g WHERE g.track_id = t.track_id ORDER BY g.position) AS genres,
               t.territories::text[] AS territories, ${iso(sql.fragment`t.updated_at`)} AS updated_at,
               ${docVersion} AS doc_version
        FROM tracks t
        JOIN artists ar ON ar.artist_id = t.artist_id
        JOIN albums al ON al.album_id = t.album_id
        WHERE ${where}
        ORDER BY t.track_id
        LIMIT ${limit}`);
      return rows.map((r) => asDocument(r.track_id, r));
    }
    case 'artists': {
      const rows = await db.any(sql.type(ArtistDoc)`
        SELECT ar.artist_id::text, ar.name, ar.country::text AS country,
               coalesce(s.play_count, 0)::bigint AS play_count, coalesce(s.track_count, 0)::int AS track_count,
               ${iso(sql.fragment`coalesce(s.updated_at, ar.created_at)`)} AS updated_at, ${docVersion} AS doc_version
        FROM artists ar
        LEFT JOIN LATERAL (
          SELECT sum(t.play_count) AS play_count, count(*) AS track_count, max(t.updated_at) AS updated_at
          FROM tracks t WHERE t.artist_id = ar.artist_id AND t.status = 'available'
        ) s ON true
        WHERE ${where}
        ORDER BY ar.artist_id
        LIMIT ${limit}`);
      return rows.map((r) => asDocument(r.artist_id, r));
    }
    case 'albums': {
      const rows = await db.any(sql.type(AlbumDoc)`
        SELECT al.album_id::text, al.title, al.artist_id::text, ar.name AS artist_name, al.upc,
               coalesce(s.play_count, 0)::bigint AS play_count, coalesce(s.track_count, 0)::int AS track_count,
               al.release_date::text AS release_date,
               ${iso(sql.fragment`coalesce(s.updated_at, al.created_at)`)} AS updated_at, ${docVersion} AS doc_version
        FROM albums al
        JOIN artists ar ON ar.artist_id = al.artist_id
        LEFT JOIN LATERAL (
          SELECT sum(t.play_count) AS play_count, count(*) AS track_count, max(t.updated_at) AS updated_at
          FROM tracks t WHERE t.album_id = al.album_id AND t.status = 'available'
        ) s ON true
        WHERE ${where}
        ORDER BY al.album_id
        LIMIT ${limit}`);
      return rows.map((r) => asDocument(r.album_id, r));
    }
    case 'playlists': {
      // Only public playlists are searchable; their titles are what their owners chose to publish.
      const rows = await db.any(sql.type(PlaylistDoc)`
        SELECT p.playlist_id::text, p.title, p.owner_id::text, p.collaborative, p.public,
               coalesce(s.track_count, 0)::int AS track_count, coalesce(s.play_count, 0)::bigint AS play_count,
               ${iso(sql.fragment`p.created_at`)} AS created_at, ${iso(sql.fragment`p.created_at`)} AS updated_at,
               ${docVersion} AS doc_version
        FROM playlists p
        LEFT JOIN LATERAL (
          SELECT count(*) AS track_count, sum(t.play_count) AS play_count
          FROM playlist_tracks pt JOIN tracks t ON t.track_id = pt.track_id AND t.status = 'available'
          WHERE pt.playlist_id = p.playlist_id
        ) s ON true
        WHERE p.public AND ${where}
        ORDER BY p.playlist_id
        LIMIT ${limit}`);
      return rows.map((r) => asDocument(r.playlist_id, r));
    }
  }
}

/** The table alias `readDocuments` uses for each index, for callers composing conditions. */
export const idIn = (index: SearchIndex, ids: readonly string[]) => {
  const alias = { tracks: 't', artists: 'ar', albums: 'al', playlists: 'p' }[index];
  return sql.fragment`${sql.identifier([alias, ID_COLUMN[index]])} = ANY(${sql.array(ids, 'uuid')})`;
};
export const idAfter = (index: SearchIndex, after: string) => {
  const alias = { tracks: 't', artists: 'ar', albums: 'al', playlists: 'p' }[index];
  return sql.fragment`${sql.identifier([alias, ID_COLUMN[index]])} > ${after}::uuid`;
};

/** OpenSearch refused a document for a reason a retry cannot fix (a mapping error: a bug). */
export class SearchWriteError extends Error {
  override name = 'SearchWriteError';
}

/**
 * Writes documents with their versions (external_gte); an older version than the index holds is a
 * success (something newer is already there). Returns how many were written.
 */
export async function writeDocuments(
  os: OpenSearch,
  index: string,
  docs: readonly SearchDocument[],
  refresh: boolean | 'wait_for' = false,
): Promise<number> {
  if (!docs.length) return 0;
  const body = docs.flatMap((d) => [
    { index: { _index: index, _id: d.id, version: d.version, version_type: 'external_gte' } },
    d.body,
  ]);
  const { body: res } = await os.bulk({ body, refresh });
  let written = 0;
  for (const item of res.items as Record<
    string,
    { status: number; error?: { type?: string; reason?: string } }
  >[]) {
    const r = Object.values(item)[0];
    if (!r) continue;
    if (r.status < 300) written++;
    else if (r.status === 409) continue;
    else if (r.status === 400) throw new SearchWriteError(`${index}: ${r.error?.type}: ${r.error?.reason}`);
    else throw new Error(`${index}: ${r.status} ${r.error?.type ?? ''} ${r.error?.reason ?? ''}`);
  }
  return written;
}

/** Removes documents by ID; ones already gone are fine. */
export async function deleteDocuments(os: OpenSearch, index: string, ids: readonly string[]): Promise<void> {
  if (!ids.length) return;
  const { body: res } = await os.bulk({ body: ids.map((id) => ({ delete: { _index: index, _id: id } })) });
  for (const item of res.items as Record<string, { status: number; error?: { reason?: string } }>[]) {
    const r = Object.values(item)[0];
    if (r && r.status >= 300 && r.status !== 404)
      throw new Error(`${index}: delete ${r.status} ${r.error?.reason ?? ''}`);
  }
}
