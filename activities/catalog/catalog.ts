import { ApplicationFailure } from '@temporalio/activity';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { AudioFormat, Quality } from '../../domain/catalog/audio';
import {
  CatalogFailure,
  type IngestionStatus,
  type IngestionStep,
  type TrackSubmission,
} from '../../workflows/catalog/contract';

/**
 * The catalog's PostgreSQL side of ingestion: the ingestion projection, the checks that need the database
 * (identifier syntax through its check functions, genres, album ownership, duplicates) and the one
 * transaction that puts a track into the catalog. Every write is keyed by the track ID, so a retry finds
 * its own earlier write instead of writing twice.
 */

export interface CatalogWrite {
  trackId: string;
  uploadId: string;
  artistId: string;
  submission: TrackSubmission;
  audio: {
    format: AudioFormat;
    codec: string | null;
    sampleRateHz: number;
    bitDepth: number | null;
    channels: number | null;
    durationMs: number;
    sha256: string;
  };
  loudness: { integratedLufs: number; truePeakDbtp: number };
  originalKey: string;
  renditions: { quality: Quality; bitrateKbps: number; bytes: number; objectKey: string }[];
  /** The promoted cover (its largest size), to attach to the album if the album has none. */
  coverKey: string | null;
}

export type CatalogWriteResult =
  { outcome: 'written'; albumId: string; coverAttached: boolean } | { outcome: 'duplicate'; trackId: string };

export type DuplicateCheck = { kind: 'none' } | { kind: 'same'; trackId: string };

const Known = z.object({ track_id: z.string(), artist_id: z.string(), isrc: z.string() });
const Album = z.object({ album_id: z.string(), artist_id: z.string(), release_date: z.string() });
const Validity = z.object({ isrc_ok: z.boolean(), upc_ok: z.boolean(), unknown_genres: z.array(z.string()) });
const Written = z.object({ album_id: z.string(), cover_attached: z.boolean() });
const Removed = z.object({ album_id: z.string(), artist_id: z.string() });

const refuse = (failure: CatalogFailure, message: string) =>
  ApplicationFailure.nonRetryable(message, failure);

export function createCatalogActivities({ pool }: { pool: DatabasePool }) {
  /** The duplicate rules, shared by the early check and the catalog transaction (which may meet a race). */
  function judgeDuplicate(found: z.infer<typeof Known>, artistId: string, isrc: string): DuplicateCheck {
    if (found.artist_id !== artistId) {
      throw refuse(
        CatalogFailure.DuplicateOfOtherArtist,
        'This exact audio is already in the catalog under another artist. It was not published and is left ' +
          'for review; contact support if the recording is yours.',
      );
    }
    if (found.isrc !== isrc) {
      throw refuse(
        CatalogFailure.IsrcInUse,
        `This exact audio is already your track ${found.track_id} with ISRC ${found.isrc}; ` +
          'a recording keeps its ISRC. Edit that track instead of uploading it again.',
      );
    }
    return { kind: 'same', trackId: found.track_id };
  }

  const activities = {
    /** The ingestion's first state: the run exists, the upload is received. */
    async recordIngestion(input: {
      trackId: string;
      uploadId: string;
      artistId: string;
      workflowId: string;
    }): Promise<void> {
      await pool.query(sql.unsafe`
        INSERT INTO track_ingestions (track_id, upload_id, artist_id, workflow_id, status, step)
        VALUES (${input.trackId}, ${input.uploadId}, ${input.artistId}, ${input.workflowId}, 'processing', 'received')
        ON CONFLICT (track_id) DO NOTHING`);
    },

    /** Records the end of an ingestion once; a repeat (a retried activity) changes nothing. */
    async finishIngestion(input: {
      trackId: string;
      status: Exclude<IngestionStatus, 'processing'>;
      step: IngestionStep;
      failure: CatalogFailure | null;
      reason: string | null;
      catalogTrackId: string | null;
    }): Promise<void> {
      await pool.query(sql.unsafe`
        UPDATE track_ingestions
        SET status = ${input.status}, step = ${input.step}, failure = ${input.failure}, reason = ${input.reason},
            catalog_track_id = ${input.catalogTrackId}, updated_at = now(), finished_at = coalesce(finished_at, now())
        WHERE track_id = ${input.trackId} AND status IN ('processing', ${input.status})`);
    },

    /**
     * What the submission says that only the database can check: ISRC and UPC syntax (its own check
     * functions, the same the tables enforce), known genres, and an album UPC of another artist.
     */
    async checkSubmission(input: { artistId: string; submission: TrackSubmission }): Promise<void> {
      const s = input.submission;
      const v = await pool.one(sql.type(Validity)`
        SELECT cadenza_isrc_valid(${s.isrc}) AS isrc_ok, cadenza_gtin_valid(${s.album.upc}) AS upc_ok,
               ARRAY(SELECT g FROM unnest(${sql.array(s.genres, 'text')}) g
                     WHERE NOT EXISTS (SELECT 1 FROM genres WHERE genre_id = g)) AS unknown_genres`);
      if (!v.isrc_ok) {
        throw refuse(
          CatalogFailure.InvalidIsrc,
          `"${s.isrc}" is not an ISRC: 12 characters, country (2 letters), registrant (3), year (2 digits), designation (5 digits), no hyphens.`,
        );
      }
      if (!v.upc_ok) {
        throw refuse(
          CatalogFailure.InvalidUpc,
          `"${s.album.upc}" is not a valid UPC/EAN: 12 or 13 digits with a correct check digit.`,
        );
      }
      if (v.unknown_genres.length) {
        throw refuse(CatalogFailure.UnknownGenre, `Unknown genres: ${v.unknown_genres.join(', ')}.`);
      }
      const album = await pool.maybeOne(sql.type(Album)`
        SELECT album_id::text, artist_id::text, release_date::text FROM albums WHERE upc = ${s.album.upc}`);
      if (album && album.artist_id !== input.artistId) {
        throw refuse(
          CatalogFailure.AlbumOfAnotherArtist,
          `The UPC ${s.album.upc} belongs to another artist's album; check the album's UPC.`,
        );
      }
    },

    /**
     * Duplicates by content and by ISRC: the same audio of the same artist and ISRC is the existing
     * track; the same audio of another artist, or a known ISRC on other audio, is refused.
     */
    async findDuplicate(input: { sha256: string; artistId: string; isrc: string }): Promise<DuplicateCheck> {
      const same = await pool.maybeOne(sql.type(Known)`
        SELECT track_id::text, artist_id::text, isrc FROM tracks WHERE checksum_sha256 = ${input.sha256}`);
      if (same) return judgeDuplicate(same, input.artistId, input.isrc);
      const isrc = await pool.maybeOne(sql.type(Known)`
        SELECT track_id::text, artist_id::text, isrc FROM tracks WHERE isrc = ${input.isrc}`);
      if (isrc) {
        throw refuse(
          CatalogFailure.IsrcInUse,
          `The ISRC ${input.isrc} already identifies another recording in the catalog; check the ISRC.`,
        );
      }
      return { kind: 'none' };
    },

    /**
     * Track, album (created by UPC if new), genres, renditions, loudness and status in one transaction.
     * The checks run again inside it: another ingestion may have written the same audio or ISRC since.
     */
    async writeCatalog(w: CatalogWrite): Promise<CatalogWriteResult> {
      const s = w.submission;
      return pool.transaction(async (tx) => {
        // Serialise writers of the same audio or ISRC; others go on in parallel.
        await tx.query(sql.unsafe`SELECT pg_advisory_xact_lock(hashtextextended(${w.audio.sha256}, 13))`);
        await tx.query(sql.unsafe`SELECT pg_advisory_xact_lock(hashtextextended(${s.isrc}, 13))`);
        const mine = await tx.maybeOne(sql.type(Written)`
          SELECT t.album_id::text, coalesce(al.cover_object_key = ${w.coverKey}, false) AS cover_attached
          FROM tracks t JOIN albums al ON al.album_id = t.album_id
          WHERE t.track_id = ${w.trackId}`);
        if (mine) return { outcome: 'written', albumId: mine.album_id, coverAttached: mine.cover_attached };
        const same = await tx.maybeOne(sql.type(Known)`
          SELECT track_id::text, artist_id::text, isrc FROM tracks WHERE checksum_sha256 = ${w.audio.sha256}`);
        if (same) {
          const d = judgeDuplicate(same, w.artistId, s.isrc);
          if (d.kind === 'same') return { outcome: 'duplicate', trackId: d.trackId };
        }
        if (await tx.exists(sql.unsafe`SELECT 1 FROM tracks WHERE isrc = ${s.isrc}`)) {
          throw refuse(
            CatalogFailure.IsrcInUse,
            `The ISRC ${s.isrc} already identifies another recording in the catalog; check the ISRC.`,
          );
        }
        await tx.query(sql.unsafe`
          INSERT INTO albums (artist_id, title, upc, release_date)
          VALUES (${w.artistId}, ${s.album.title}, ${s.album.upc}, ${s.album.releaseDate}::date)
          ON CONFLICT (upc) DO NOTHING`);
        const album = await tx.one(sql.type(Album)`
          SELECT album_id::text, artist_id::text, release_date::text FROM albums WHERE upc = ${s.album.upc}`);
        if (album.artist_id !== w.artistId) {
          throw refuse(
            CatalogFailure.AlbumOfAnotherArtist,
            `The UPC ${s.album.upc} belongs to another artist's album; check the album's UPC.`,
          );
        }
        const renditions = w.renditions.map((r) => ({
          quality: r.quality,
          bitrateKbps: r.bitrateKbps,
          codec: 'vorbis',
          container: 'ogg',
          bytes: r.bytes,
          objectKey: r.objectKey,
        }));
        await tx.query(sql.unsafe`
          INSERT INTO tracks (
            track_id, album_id, artist_id, title, isrc, duration_ms, explicit, track_number, audio_object_key,
            renditions, checksum_sha256, status, release_date, upload_id, source_format, source_codec,
            sample_rate_hz, bit_depth, channels, loudness_lufs, true_peak_dbtp, territories)
          VALUES (
            ${w.trackId}, ${album.album_id}, ${w.artistId}, ${s.title}, ${s.isrc}, ${w.audio.durationMs},
            ${s.explicit}, ${s.trackNumber ?? null}, ${w.originalKey}, ${sql.jsonb(renditions)},
            ${w.audio.sha256}, 'available', ${album.release_date}::date, ${w.uploadId}, ${w.audio.format},
            ${w.audio.codec}, ${w.audio.sampleRateHz}, ${w.audio.bitDepth}, ${w.audio.channels},
            ${w.loudness.integratedLufs}, ${w.loudness.truePeakDbtp},
            ${s.territories?.length ? sql.array(s.territories, 'bpchar') : null})`);
        if (s.genres.length) {
          await tx.query(sql.unsafe`
            INSERT INTO track_genres (track_id, genre_id, position)
            SELECT ${w.trackId}, g, (n - 1)::smallint
            FROM unnest(${sql.array(s.genres, 'text')}) WITH ORDINALITY AS x(g, n)`);
        }
        const coverAttached = w.coverKey
          ? (
              await tx.query(sql.unsafe`
                UPDATE albums SET cover_object_key = ${w.coverKey}
                WHERE album_id = ${album.album_id} AND cover_object_key IS NULL`)
            ).rowCount > 0
          : false;
        await tx.query(sql.unsafe`
          UPDATE track_ingestions
          SET status = 'available', step = 'index', catalog_track_id = ${w.trackId}, updated_at = now()
          WHERE track_id = ${w.trackId} AND status = 'processing'`);
        return { outcome: 'written', albumId: album.album_id, coverAttached };
      });
    },

    /**
     * Compensation: takes back what the catalog write of this ingestion did (the track, its genres,
     * an album it created that holds no other track, the cover it attached). Returns what the search
     * documents and dimensions must follow; nothing when there was nothing to take back.
     */
    async removeIngestedTrack(input: {
      trackId: string;
      uploadId: string;
      coverKey: string | null;
    }): Promise<{ albumId: string; artistId: string; albumRemoved: boolean } | null> {
      return pool.transaction(async (tx) => {
        const removed = await tx.maybeOne(sql.type(Removed)`
          DELETE FROM tracks WHERE track_id = ${input.trackId} AND upload_id = ${input.uploadId}
          RETURNING album_id::text, artist_id::text`);
        if (!removed) return null;
        if (input.coverKey) {
          await tx.query(sql.unsafe`
            UPDATE albums SET cover_object_key = NULL
            WHERE album_id = ${removed.album_id} AND cover_object_key = ${input.coverKey}`);
        }
        const albumRemoved =
          (
            await tx.query(sql.unsafe`
              DELETE FROM albums al WHERE al.album_id = ${removed.album_id}
                AND NOT EXISTS (SELECT 1 FROM tracks t WHERE t.album_id = al.album_id)`)
          ).rowCount > 0;
        return { albumId: removed.album_id, artistId: removed.artist_id, albumRemoved };
      });
    },
  };
  return activities;
}

export type CatalogActivities = ReturnType<typeof createCatalogActivities>;
