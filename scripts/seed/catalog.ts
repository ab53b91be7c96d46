import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client as OpenSearch } from '@opensearch-project/opensearch';
import type { Client as MinioClient } from 'minio';
import { sql, type DatabasePool } from 'slonik';
import { runFfmpeg } from '../../activities/catalog/ffmpeg';
import { inspectFile, loudnessOf, transcodeToFiles } from '../../activities/catalog/media';
import { recountPlays } from '../../activities/catalog/play-counts';
import { idAfter, readDocuments, writeDocuments } from '../../activities/catalog/search-documents';
import { originalKey, renditionKey } from '../../domain/catalog/keys';
import { bucketName } from '../../lib/clients/minio';
import { indexAlias, SEARCH_INDICES } from '../../lib/clients/opensearch';
import type { Dataset } from './generate';

/**
 * The catalog side of the seed: a few seeded tracks get real audio (generated with ffmpeg, then measured and
 * transcoded by the same functions ingestion's activities use, and stored under the same keys), play counts
 * come from ClickHouse, and every seeded track, album, artist and public playlist gets its search document.
 * Search and playback then work on a fresh system without anyone uploading first.
 */
export interface CatalogSeedDeps {
  pool: DatabasePool;
  clickhouse: ClickHouseClient;
  minio: MinioClient;
  opensearch: OpenSearch;
  bucketPrefix: string;
  indexPrefix: string;
}

const AUDIO_SECONDS = 40;
const PAGE = 2000;

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Real audio for one seeded track: a tone of its own over soft noise, 40 s of 44.1 kHz stereo FLAC. */
async function giveAudio(deps: CatalogSeedDeps, trackId: string, n: number): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cadenza-seed-audio-'));
  try {
    const file = path.join(dir, 'original.flac');
    const made = await runFfmpeg([
      '-y',
      '-f', 'lavfi', '-i', `sine=frequency=${196 + n * 37}:sample_rate=44100:duration=${AUDIO_SECONDS}`,
      '-f', 'lavfi', '-i', `anoisesrc=color=pink:sample_rate=44100:duration=${AUDIO_SECONDS}:amplitude=0.04:seed=${n + 1}`,
      '-filter_complex', '[0][1]amix=inputs=2:duration=shortest', '-ac', '2', '-c:a', 'flac', file,
    ]); // prettier-ignore
    if (made.code !== 0) throw new Error(`ffmpeg could not make seed audio: ${made.stderr.slice(-300)}`);
    const sha256 = await sha256Of(file);
    const audio = await inspectFile(file, {
      bytes: 0, maxBytes: Number.MAX_SAFE_INTEGER, sha256, extension: 'flac', detected: null, format: null,
      codec: null, container: null, lossless: false, durationMs: null, sampleRateHz: null, bitDepth: null,
      channels: null, parseError: null, truncatedHeader: false,
    }); // prettier-ignore
    const loudness = await loudnessOf(file);
    const ladder = await transcodeToFiles(file, dir);
    if ('error' in ladder) throw new Error(`seed transcode failed: ${ladder.error}`);
    const audioBucket = bucketName('audio', deps.bucketPrefix);
    await deps.minio.fPutObject(audioBucket, originalKey(trackId, 'flac'), file, {
      'Content-Type': 'audio/flac',
    });
    const renditions = [];
    for (const o of ladder.outputs) {
      const objectKey = renditionKey(trackId, o.quality);
      await deps.minio.fPutObject(audioBucket, objectKey, o.file, { 'Content-Type': 'audio/ogg' });
      renditions.push({
        quality: o.quality,
        bitrateKbps: o.bitrateKbps,
        codec: 'vorbis',
        container: 'ogg',
        bytes: o.bytes,
        objectKey,
      });
    }
    await deps.pool.query(sql.unsafe`
      UPDATE tracks
      SET checksum_sha256 = ${sha256}, duration_ms = ${audio.durationMs ?? AUDIO_SECONDS * 1000},
          audio_object_key = ${originalKey(trackId, 'flac')}, renditions = ${sql.jsonb(renditions)},
          source_format = 'flac', source_codec = ${audio.codec}, sample_rate_hz = ${audio.sampleRateHz},
          bit_depth = ${audio.bitDepth}, channels = ${audio.channels},
          loudness_lufs = ${loudness.integratedLufs}, true_peak_dbtp = ${loudness.truePeakDbtp}, updated_at = now()
      WHERE track_id = ${trackId}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface CatalogSeedReport {
  audioTracks: string[];
  playCountsChanged: number;
  documents: number;
}

export async function seedCatalog(
  deps: CatalogSeedDeps,
  data: Dataset,
  opts: { audioTracks: number; onDocuments?: (n: number) => void },
): Promise<CatalogSeedReport> {
  // The most played tracks: the generator's Zipf ranks follow the track list.
  const chosen = data.tracks.slice(0, opts.audioTracks);
  const bare = await deps.pool.anyFirst(sql.unsafe`
    SELECT track_id::text FROM tracks
    WHERE track_id = ANY(${sql.array(
      chosen.map((t) => t.track_id),
      'uuid',
    )}) AND renditions = '[]'::jsonb`);
  for (const [n, t] of chosen.entries()) {
    if (bare.includes(t.track_id)) await giveAudio(deps, t.track_id, n);
  }
  const playCountsChanged = await recountPlays(deps.pool, deps.clickhouse);
  let documents = 0;
  for (const name of SEARCH_INDICES) {
    for (let after = '00000000-0000-0000-0000-000000000000'; ;) {
      const docs = await readDocuments(deps.pool, name, idAfter(name, after), PAGE);
      if (!docs.length) break;
      const written = await writeDocuments(deps.opensearch, indexAlias(name, deps.indexPrefix), docs);
      documents += written;
      opts.onDocuments?.(written);
      after = (docs.at(-1) as { id: string }).id;
    }
  }
  await deps.opensearch.indices.refresh({
    index: SEARCH_INDICES.map((n) => indexAlias(n, deps.indexPrefix)).join(','),
  });
  return { audioTracks: chosen.map((t) => t.track_id), playCountsChanged, documents };
}
