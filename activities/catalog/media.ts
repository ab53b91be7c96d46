import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { fileTypeFromFile } from 'file-type';
import type { Client as MinioClient } from 'minio';
import { parseFile } from 'music-metadata';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import {
  COVER_MAX_BYTES,
  COVER_SIZES,
  LADDER,
  RENDITION_CODEC,
  coverRejection,
  type AudioFormat,
  type AudioInspection,
  type Quality,
  type Rejection,
} from '../../domain/catalog/audio';
import { derivedCoverKey, derivedRenditionKey, uploadKey } from '../../domain/catalog/keys';
import { bucketName } from '../../lib/clients/minio';
import { CatalogFailure } from '../../workflows/catalog/contract';
import { ffmpegError, FfmpegAborted, probeImage, runFfmpeg } from './ffmpeg';

/**
 * The ffmpeg side of ingestion (queue `catalog-media`): inspect an upload, measure its loudness, transcode
 * the ladder, prepare cover art. Each reads the upload from `staging`, writes only under deterministic
 * keys, heartbeats with progress, and honours cancellation (ffmpeg is killed). Temporary files live in a
 * folder of their own per attempt and are removed whatever happens.
 */
export interface MediaDeps {
  pool: DatabasePool;
  minio: MinioClient;
  bucketPrefix: string;
  maxUploadBytes: number;
  /** Where temporary files go (default: the OS temp folder). */
  workDir?: string;
}

/** Enough of a file for its magic bytes (file-type reads at most 4 KB; ID3 tags before MP3 frames may be long). */
const HEAD_BYTES = 256 * 1024;
/** How long ffmpeg's presigned reads of a staging object stay valid. */
const READ_URL_SECONDS = 6 * 3600;

const UploadRow = z.object({
  artist_id: z.string(),
  kind: z.string(),
  extension: z.string(),
  declared_bytes: z.number(),
});

export interface LoudnessResult {
  integratedLufs: number;
  truePeakDbtp: number;
  decodedMs: number;
  /** A decode error (the file is damaged), or null. */
  error: string | null;
  cpuMs: number;
  wallMs: number;
}

export interface Rendition {
  quality: Quality;
  bitrateKbps: number;
  bytes: number;
  /** Where it waits in `staging` for promotion. */
  stagingKey: string;
}

export interface TranscodeResult {
  renditions: Rendition[];
  cpuMs: number;
  wallMs: number;
}

export interface CoverResult {
  width: number | null;
  height: number | null;
  rejection: Rejection | null;
  /** Resized JPEGs in `staging`, when the cover is acceptable. */
  stagingKeys: { size: number; key: string }[];
}

const FORMAT_OF_DETECTED: Record<string, AudioFormat> = {
  flac: 'flac',
  wav: 'wav',
  mp3: 'mp3',
  ogg: 'ogg',
  oga: 'ogg',
  opus: 'ogg',
  spx: 'ogg',
};

const isMissing = (err: unknown) => ['NotFound', 'NoSuchKey'].includes((err as { code?: string }).code ?? '');

const expired = () =>
  ApplicationFailure.nonRetryable(
    'The upload is no longer in staging (uploads are kept 2 days, or the file never arrived); upload the file again.',
    CatalogFailure.UploadExpired,
  );

/** ffmpeg could not reach the object store: worth another attempt, unlike a damaged file. */
const TRANSIENT_INPUT = /connection|http error|server returned 5|i\/o error|timed out|network/i;

export function createMediaActivities(deps: MediaDeps) {
  const staging = bucketName('staging', deps.bucketPrefix);

  async function workFolder(): Promise<string> {
    return mkdtemp(path.join(deps.workDir ?? tmpdir(), 'cadenza-media-'));
  }

  async function stagedSize(key: string): Promise<number> {
    try {
      return (await deps.minio.statObject(staging, key)).size;
    } catch (err) {
      if (isMissing(err)) throw expired();
      throw err;
    }
  }

  /** Copies a staging object to a local file, hashing it on the way (one read, no buffering). */
  async function download(key: string, file: string, signal: AbortSignal): Promise<string> {
    const hash = createHash('sha256');
    let bytes = 0;
    let lastBeat = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        bytes += chunk.length;
        if (Date.now() - lastBeat > 1000) {
          lastBeat = Date.now();
          Context.current().heartbeat({ step: 'download', bytes });
        }
        done(null, chunk);
      },
    });
    let source: NodeJS.ReadableStream;
    try {
      source = await deps.minio.getObject(staging, key);
    } catch (err) {
      if (isMissing(err)) throw expired();
      throw err;
    }
    await pipeline(source, tap, createWriteStream(file), { signal });
    return hash.digest('hex');
  }

  function cancelledOr(err: unknown): unknown {
    const ctx = Context.current();
    if (err instanceof FfmpegAborted || ctx.cancellationSignal.aborted) {
      return new CancelledFailure('ingestion step cancelled');
    }
    return err;
  }

  return {
    /**
     * What the upload is: size, SHA-256 (streamed), the format its magic bytes name, and what
     * music-metadata reads from its headers (codec, duration, sample rate, bit depth, channels).
     */
    async inspectUpload(input: { uploadId: string; artistId: string }): Promise<AudioInspection> {
      const upload = await deps.pool.maybeOne(sql.type(UploadRow)`
        SELECT artist_id::text, kind, extension, declared_bytes FROM uploads WHERE upload_id = ${input.uploadId}`);
      if (!upload || upload.artist_id !== input.artistId || upload.kind !== 'audio') throw expired();
      const key = uploadKey(input.uploadId);
      const bytes = await stagedSize(key);
      const base: AudioInspection = {
        bytes,
        maxBytes: deps.maxUploadBytes,
        sha256: '',
        extension: upload.extension,
        detected: null,
        format: null,
        codec: null,
        container: null,
        lossless: false,
        durationMs: null,
        sampleRateHz: null,
        bitDepth: null,
        channels: null,
        parseError: null,
        truncatedHeader: false,
      };
      // Empty or oversized files are refused on their size alone: nothing to download.
      if (bytes === 0 || bytes > deps.maxUploadBytes) return base;
      const dir = await workFolder();
      try {
        // What is not audio shows in its first bytes: refused without reading the rest.
        const head = path.join(dir, 'head');
        await pipeline(
          await deps.minio.getPartialObject(staging, key, 0, Math.min(bytes, HEAD_BYTES)),
          createWriteStream(head),
        );
        const first = await detectFormat(head);
        if (!first.format) return { ...base, ...first };
        const file = path.join(dir, 'upload');
        const signal = Context.current().cancellationSignal;
        const sha256 = await download(key, file, signal).catch((err: unknown) => {
          throw cancelledOr(err);
        });
        return await inspectFile(file, { ...base, sha256 });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },

    /**
     * EBU R128 integrated loudness and true peak (ffmpeg's ebur128 filter), decoding every sample: a
     * damaged file shows here as a decode error or as less audio than its header declared.
     */
    async measureLoudness(input: { uploadId: string }): Promise<LoudnessResult> {
      const key = uploadKey(input.uploadId);
      await stagedSize(key);
      const url = await deps.minio.presignedGetObject(staging, key, READ_URL_SECONDS);
      const ctx = Context.current();
      const result = await loudnessOf(url, {
        signal: ctx.cancellationSignal,
        onProgress: (ms) => ctx.heartbeat({ step: 'loudness', decodedMs: ms }),
      }).catch((err: unknown) => {
        throw cancelledOr(err);
      });
      if (result.error && TRANSIENT_INPUT.test(result.error)) {
        throw new Error(`ffmpeg could not read the upload: ${result.error}`);
      }
      return result;
    },

    /**
     * The streaming ladder in one ffmpeg run (the source is decoded once): Ogg Vorbis, stereo, 44.1 kHz,
     * without the upload's tags (they may carry personal data). Written to `staging` under the track's
     * derived keys, so a retry after a crash replaces them instead of adding a second set.
     */
    async transcodeLadder(input: {
      uploadId: string;
      trackId: string;
      durationMs: number;
    }): Promise<TranscodeResult> {
      const key = uploadKey(input.uploadId);
      await stagedSize(key);
      const url = await deps.minio.presignedGetObject(staging, key, READ_URL_SECONDS);
      const ctx = Context.current();
      const dir = await workFolder();
      try {
        const ladder = await transcodeToFiles(url, dir, {
          signal: ctx.cancellationSignal,
          onProgress: (ms) =>
            ctx.heartbeat({
              step: 'transcode',
              percent: Math.min(100, Math.round((100 * ms) / Math.max(1, input.durationMs))),
            }),
        }).catch((err: unknown) => {
          throw cancelledOr(err);
        });
        if ('error' in ladder) {
          if (TRANSIENT_INPUT.test(ladder.error))
            throw new Error(`ffmpeg could not read the upload: ${ladder.error}`);
          throw ApplicationFailure.nonRetryable(
            `The audio could not be transcoded (${ladder.error}); export the file again.`,
            CatalogFailure.CorruptFile,
          );
        }
        const renditions: Rendition[] = [];
        for (const o of ladder.outputs) {
          const stagingKey = derivedRenditionKey(input.trackId, o.quality);
          await deps.minio.fPutObject(staging, stagingKey, o.file, {
            'Content-Type': RENDITION_CODEC.contentType,
          });
          renditions.push({ quality: o.quality, bitrateKbps: o.bitrateKbps, bytes: o.bytes, stagingKey });
        }
        return { renditions, cpuMs: ladder.cpuMs, wallMs: ladder.wallMs };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },

    /** Cover art: a JPEG or PNG, square, at least 640 px; resized to the stored sizes into `staging`. */
    async prepareCover(input: {
      coverUploadId: string;
      trackId: string;
      artistId: string;
    }): Promise<CoverResult> {
      const upload = await deps.pool.maybeOne(sql.type(UploadRow)`
        SELECT artist_id::text, kind, extension, declared_bytes FROM uploads WHERE upload_id = ${input.coverUploadId}`);
      if (!upload || upload.artist_id !== input.artistId || upload.kind !== 'cover') throw expired();
      const key = uploadKey(input.coverUploadId);
      const bytes = await stagedSize(key);
      const unreadable = {
        width: null,
        height: null,
        rejection: coverRejection(null, null),
        stagingKeys: [],
      };
      if (bytes === 0 || bytes > COVER_MAX_BYTES) return unreadable;
      const dir = await workFolder();
      try {
        const file = path.join(dir, 'cover');
        await download(key, file, Context.current().cancellationSignal);
        const type = (await fileTypeFromFile(file))?.ext;
        if (type !== 'jpg' && type !== 'png') return unreadable;
        const size = await probeImage(file);
        const rejection = coverRejection(size?.width ?? null, size?.height ?? null);
        if (rejection || !size)
          return { width: size?.width ?? null, height: size?.height ?? null, rejection, stagingKeys: [] };
        const stagingKeys: CoverResult['stagingKeys'] = [];
        for (const px of COVER_SIZES) {
          const out = path.join(dir, `cover-${px}.jpg`);
          const run = await runFfmpeg(
            ['-i', file, '-vf', `scale=${px}:${px}`, '-q:v', '3', '-frames:v', '1', '-y', out],
            {
              signal: Context.current().cancellationSignal,
            },
          ).catch((err: unknown) => {
            throw cancelledOr(err);
          });
          if (run.code !== 0) return { ...size, rejection: coverRejection(null, null), stagingKeys: [] };
          const k = derivedCoverKey(input.trackId, px);
          await deps.minio.fPutObject(staging, k, out, { 'Content-Type': 'image/jpeg' });
          stagingKeys.push({ size: px, key: k });
        }
        return { ...size, rejection: null, stagingKeys };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * The plain tools the activities above are made of (the seed uses them on local files too): no activity
 * context, cancellation and progress passed in.
 */
interface Watch {
  signal?: AbortSignal;
  onProgress?: (outTimeMs: number) => void;
}

/** What a file's magic bytes say it is, and the audio format that is (if the catalog takes it). */
export async function detectFormat(file: string): Promise<Pick<AudioInspection, 'detected' | 'format'>> {
  const detected = (await fileTypeFromFile(file))?.ext ?? null;
  return { detected, format: detected ? (FORMAT_OF_DETECTED[detected] ?? null) : null };
}

/** What the bytes of a local file are: its format by magic bytes, then what its headers declare. */
export async function inspectFile(file: string, base: AudioInspection): Promise<AudioInspection> {
  const { detected, format } = await detectFormat(file);
  const found: AudioInspection = { ...base, detected, format };
  if (!format) return found;
  try {
    // Header durations first (they are what the file declares); a scan only when the header has none.
    let meta = await parseFile(file, { duration: false, skipCovers: true });
    if (meta.format.duration === undefined)
      meta = await parseFile(file, { duration: true, skipCovers: true });
    const f = meta.format;
    found.codec = f.codec ?? null;
    found.container = f.container ?? null;
    found.lossless = Boolean(f.lossless);
    found.durationMs = f.duration === undefined ? null : Math.round(f.duration * 1000);
    found.sampleRateHz = f.sampleRate ?? null;
    found.bitDepth = f.bitsPerSample ?? null;
    found.channels = f.numberOfChannels ?? null;
  } catch (err) {
    found.parseError = (err as Error).message.slice(0, 200);
  }
  if (format === 'wav') found.truncatedHeader = await wavDataExceedsFile(file);
  return found;
}

/** EBU R128 loudness of a file or URL, decoding every sample (a decode error comes back as `error`). */
export async function loudnessOf(source: string, watch: Watch = {}): Promise<LoudnessResult> {
  const run = await runFfmpeg(
    ['-xerror', '-i', source, '-map', '0:a:0', '-af', 'ebur128=peak=true', '-f', 'null', '-'],
    watch,
  );
  if (run.code !== 0) {
    return {
      integratedLufs: -99,
      truePeakDbtp: -99,
      decodedMs: run.outTimeMs,
      error: ffmpegError(run.stderr),
      cpuMs: run.cpuMs,
      wallMs: run.wallMs,
    };
  }
  const summary = run.stderr.slice(run.stderr.lastIndexOf('Summary:'));
  const level = (re: RegExp) => {
    const v = re.exec(summary)?.[1];
    const n = v === undefined ? NaN : Number(v);
    return Number.isFinite(n) ? Math.max(-99, Math.min(n, 30)) : -99;
  };
  return {
    integratedLufs: level(/\bI:\s+(-?[\d.]+|-?inf)\s+LUFS/),
    truePeakDbtp: level(/Peak:\s+(-?[\d.]+|-?inf)\s+dBFS/),
    decodedMs: run.outTimeMs,
    error: null,
    cpuMs: run.cpuMs,
    wallMs: run.wallMs,
  };
}

/**
 * The ladder in one ffmpeg run (the source is decoded once) into `dir`: Ogg Vorbis, stereo, 44.1 kHz,
 * without the source's tags (they may carry personal data).
 */
export async function transcodeToFiles(
  source: string,
  dir: string,
  watch: Watch = {},
): Promise<
  | {
      outputs: { quality: Quality; bitrateKbps: number; file: string; bytes: number }[];
      cpuMs: number;
      wallMs: number;
    }
  | { error: string }
> {
  const outputs = LADDER.map((r) => ({ ...r, file: path.join(dir, `${r.quality}.ogg`) }));
  const args = ['-xerror', '-i', source, '-map_metadata', '-1'];
  for (const o of outputs) {
    args.push('-map', '0:a:0', '-vn', '-ac', '2', '-ar', '44100', '-c:a', 'libvorbis');
    args.push('-b:a', `${o.bitrateKbps}k`, '-f', 'ogg', '-y', o.file);
  }
  const run = await runFfmpeg(args, watch);
  if (run.code !== 0) return { error: ffmpegError(run.stderr) };
  const sized = [];
  for (const o of outputs)
    sized.push({
      quality: o.quality,
      bitrateKbps: o.bitrateKbps,
      file: o.file,
      bytes: (await stat(o.file)).size,
    });
  return { outputs: sized, cpuMs: run.cpuMs, wallMs: run.wallMs };
}

/** A RIFF/WAVE file whose data chunk declares more bytes than follow it (the upload was cut short). */
async function wavDataExceedsFile(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(Math.min(size, 1 << 16));
    await handle.read(head, 0, head.length, 0);
    for (let at = 12; at + 8 <= head.length;) {
      const id = head.toString('latin1', at, at + 4);
      const length = head.readUInt32LE(at + 4);
      if (id === 'data') {
        // 0 and 0xFFFFFFFF are what streaming writers leave when they cannot seek back: no claim made.
        if (length === 0 || length === 0xffffffff) return false;
        return length > size - (at + 8);
      }
      at += 8 + length + (length % 2);
    }
    return false;
  } finally {
    await handle.close();
  }
}

export type MediaActivities = ReturnType<typeof createMediaActivities>;
