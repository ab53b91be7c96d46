import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

/**
 * The catalog's reads for the API, from PostgreSQL: uploads (the API's own), the ingestion projection and
 * the catalog rows the workflows keep current. Reads never wait for a workflow.
 */

const Upload = z.object({
  upload_id: z.string(),
  artist_id: z.string(),
  kind: z.enum(['audio', 'cover']),
  filename: z.string(),
  extension: z.string(),
  content_type: z.string(),
  declared_bytes: z.number(),
  object_key: z.string(),
  expires_at: z.string(),
});
export type UploadRow = z.infer<typeof Upload>;

export const uploadById = (db: CommonQueryMethods, uploadId: string) =>
  db.maybeOne(sql.type(Upload)`
    SELECT upload_id::text, artist_id::text, kind, filename, extension, content_type, declared_bytes, object_key,
           to_json(expires_at) #>> '{}' AS expires_at
    FROM uploads WHERE upload_id = ${uploadId}`);

export const artistExists = (db: CommonQueryMethods, artistId: string) =>
  db.exists(sql.unsafe`SELECT 1 FROM artists WHERE artist_id = ${artistId}`);

const Submission = z.object({
  isrc_ok: z.boolean(),
  upc_ok: z.boolean(),
  unknown_genres: z.array(z.string()),
  unknown_countries: z.array(z.string()),
  album_artist: z.string().nullable(),
});

/** The checks the database can answer before a workflow starts (the workflow makes them again). */
export const submissionChecks = (
  db: CommonQueryMethods,
  s: { isrc?: string; upc?: string; genres: string[]; territories: string[] },
) =>
  db.one(sql.type(Submission)`
    SELECT coalesce(cadenza_isrc_valid(${s.isrc ?? null}), true) AS isrc_ok,
           coalesce(cadenza_gtin_valid(${s.upc ?? null}), true) AS upc_ok,
           ARRAY(SELECT g FROM unnest(${sql.array(s.genres, 'text')}) g
                 WHERE NOT EXISTS (SELECT 1 FROM genres WHERE genre_id = g)) AS unknown_genres,
           ARRAY(SELECT c FROM unnest(${sql.array(s.territories, 'text')}) c
                 WHERE NOT EXISTS (SELECT 1 FROM countries WHERE code = c)) AS unknown_countries,
           (SELECT artist_id::text FROM albums WHERE upc = ${s.upc ?? null}) AS album_artist`);

const Track = z.object({
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
  release_date: z.string(),
  play_count: z.number(),
  genres: z.array(z.string()),
  territories: z.array(z.string()).nullable(),
  renditions: z.array(
    z.object({ quality: z.string(), bitrateKbps: z.number(), codec: z.string(), objectKey: z.string() }),
  ),
  loudness_lufs: z.string().nullable(),
  true_peak_dbtp: z.string().nullable(),
  taken_down_reason: z.string().nullable(),
  cover_object_key: z.string().nullable(),
});
export type TrackRow = z.infer<typeof Track>;

export const trackById = (db: CommonQueryMethods, trackId: string) =>
  db.maybeOne(sql.type(Track)`
    SELECT t.track_id::text, t.title, t.artist_id::text, ar.name AS artist_name, t.album_id::text,
           al.title AS album_title, t.isrc, t.explicit, t.duration_ms, t.status, t.release_date::text AS release_date,
           t.play_count,
           ARRAY(SELECT g.genre_id FROM track_genres g WHERE g.track_id = t.track_id ORDER BY g.position) AS genres,
           t.territories::text[] AS territories, t.renditions, t.loudness_lufs, t.true_peak_dbtp,
           t.taken_down_reason, al.cover_object_key
    FROM tracks t
    JOIN artists ar ON ar.artist_id = t.artist_id
    JOIN albums al ON al.album_id = t.album_id
    WHERE t.track_id = ${trackId}`);

const Ingestion = z.object({
  track_id: z.string(),
  artist_id: z.string(),
  workflow_id: z.string(),
  status: z.enum(['processing', 'available', 'duplicate', 'rejected', 'canceled']),
  step: z.string(),
  failure: z.string().nullable(),
  reason: z.string().nullable(),
  catalog_track_id: z.string().nullable(),
  started_at: z.string(),
  finished_at: z.string().nullable(),
});
export type IngestionRow = z.infer<typeof Ingestion>;

export const ingestionByTrack = (db: CommonQueryMethods, trackId: string) =>
  db.maybeOne(sql.type(Ingestion)`
    SELECT track_id::text, artist_id::text, workflow_id, status, step, failure, reason,
           catalog_track_id::text, to_json(started_at) #>> '{}' AS started_at,
           to_json(finished_at) #>> '{}' AS finished_at
    FROM track_ingestions WHERE track_id = ${trackId}`);

const Listener = z.object({
  tier: z.enum(['free', 'premium']),
  parental_controls: z.boolean(),
  country: z.string(),
});
export type ListenerRow = z.infer<typeof Listener>;

/** What playback and search need to know of a listener: tier (kept by billing), parental controls, market. */
export const listenerById = (db: CommonQueryMethods, userId: string) =>
  db.maybeOne(sql.type(Listener)`
    SELECT tier, parental_controls, country::text AS country
    FROM users WHERE user_id = ${userId} AND erased_at IS NULL`);
