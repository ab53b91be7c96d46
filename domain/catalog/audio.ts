/**
 * What the catalog accepts as audio, and the ladder it streams. Pure and dependency-free: the ingestion
 * workflow decides with these rules (DESIGN §2), so no clock, no I/O, no Node built-ins.
 */
import { CatalogFailure } from './failures';

export const AUDIO_FORMATS = ['flac', 'wav', 'mp3', 'ogg'] as const;
export type AudioFormat = (typeof AUDIO_FORMATS)[number];

/** File-name extensions each format may carry (lower case, without the dot). */
export const FORMAT_EXTENSIONS: Record<AudioFormat, readonly string[]> = {
  flac: ['flac'],
  wav: ['wav', 'wave'],
  mp3: ['mp3'],
  ogg: ['ogg', 'oga', 'opus'],
};
export const AUDIO_EXTENSIONS = Object.values(FORMAT_EXTENSIONS).flat();

export const formatOfExtension = (ext: string): AudioFormat | undefined =>
  AUDIO_FORMATS.find((f) => FORMAT_EXTENSIONS[f].includes(ext.toLowerCase()));

export const MIN_DURATION_MS = 30_000;
export const MAX_DURATION_MS = 3 * 3_600_000;
/** Lossless masters below CD quality are up-sampled lossy audio more often than not. */
export const LOSSLESS_MIN_SAMPLE_RATE = 44_100;
/** Ogg carries these codecs from creators; anything else in an Ogg container is refused. */
export const OGG_CODECS = ['vorbis', 'opus', 'flac'] as const;
/**
 * A decoded length this far from what the header declares means the file was cut short (or lies):
 * 2 % or a second, whichever is more (encoders pad a frame or two).
 */
export const durationTolerance = (declaredMs: number) => Math.max(1000, declaredMs * 0.02);

/** What inspection found in an uploaded file (no personal data: sizes, codecs, a checksum). */
export interface AudioInspection {
  bytes: number;
  /** The largest upload the inspecting worker accepts (its configuration). */
  maxBytes: number;
  sha256: string;
  /** The extension of the creator's file name, lower case, without the dot. */
  extension: string;
  /** What the magic bytes say the file is (`file-type`'s extension), or null when they match nothing. */
  detected: string | null;
  /** The audio format the magic bytes identify, if it is one the catalog takes. */
  format: AudioFormat | null;
  /** Parsed by music-metadata; null with `parseError` when the file could not be parsed. */
  codec: string | null;
  container: string | null;
  lossless: boolean;
  durationMs: number | null;
  sampleRateHz: number | null;
  bitDepth: number | null;
  channels: number | null;
  parseError: string | null;
  /** A RIFF/WAVE data chunk that declares more bytes than the file holds. */
  truncatedHeader: boolean;
}

export interface Rejection {
  failure: CatalogFailure;
  reason: string;
}

const minutes = (ms: number) => {
  const s = Math.round(ms / 1000);
  return s >= 3600
    ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
    : `${Math.floor(s / 60)} min ${s % 60} s`;
};

/** The first reason the file cannot go into the catalog, or null when it can. */
export function audioRejection(a: AudioInspection): Rejection | null {
  const { maxBytes } = a;
  const reject = (failure: CatalogFailure, reason: string): Rejection => ({ failure, reason });
  if (a.bytes === 0) return reject(CatalogFailure.EmptyFile, 'The file is empty (0 bytes); upload it again.');
  if (a.bytes > maxBytes) {
    return reject(
      CatalogFailure.FileTooLarge,
      `The file is ${a.bytes} bytes; at most ${maxBytes} bytes are accepted. Upload a compressed (FLAC) copy.`,
    );
  }
  if (!a.format) {
    return a.detected
      ? reject(
          CatalogFailure.UnsupportedFormat,
          `The file is ${a.detected.toUpperCase()}, not audio the catalog takes; upload FLAC, WAV, MP3 or Ogg.`,
        )
      : reject(
          CatalogFailure.CorruptFile,
          'The file is not recognisable audio (its first bytes match no known format); upload FLAC, WAV, MP3 or Ogg.',
        );
  }
  if (!FORMAT_EXTENSIONS[a.format].includes(a.extension)) {
    return reject(
      CatalogFailure.ExtensionMismatch,
      `The file name ends in .${a.extension} but the file is ${a.format.toUpperCase()}; ` +
        `rename it to .${FORMAT_EXTENSIONS[a.format][0]} or upload the file you meant.`,
    );
  }
  if (a.parseError || a.durationMs === null || a.sampleRateHz === null) {
    return reject(
      CatalogFailure.CorruptFile,
      `The ${a.format.toUpperCase()} file could not be read (${a.parseError ?? 'no audio stream'}); export it again.`,
    );
  }
  if (a.truncatedHeader) {
    return reject(
      CatalogFailure.TruncatedFile,
      'The file ends before the audio its header announces; the upload or export was cut short. Upload it again.',
    );
  }
  if (a.format === 'ogg' && !OGG_CODECS.some((c) => (a.codec ?? '').toLowerCase().includes(c))) {
    return reject(
      CatalogFailure.UnsupportedFormat,
      `The Ogg file carries ${a.codec ?? 'an unknown codec'}; Ogg files must hold Vorbis, Opus or FLAC.`,
    );
  }
  if (a.durationMs < MIN_DURATION_MS) {
    return reject(
      CatalogFailure.TooShort,
      `The track lasts ${minutes(a.durationMs)}; tracks must last at least 30 s.`,
    );
  }
  if (a.durationMs > MAX_DURATION_MS) {
    return reject(
      CatalogFailure.TooLong,
      `The track lasts ${minutes(a.durationMs)}; tracks may last 3 h at most.`,
    );
  }
  if (a.lossless && a.sampleRateHz < LOSSLESS_MIN_SAMPLE_RATE) {
    return reject(
      CatalogFailure.SampleRateTooLow,
      `The lossless file is sampled at ${a.sampleRateHz} Hz; lossless masters need at least 44,100 Hz.`,
    );
  }
  return null;
}

/** What decoding the whole file found (the loudness pass decodes every sample). */
export interface DecodeCheck {
  decodedMs: number;
  error: string | null;
}

/**
 * A file that decodes to much less (or more) than its header announces was cut short (a decode error where
 * it stops is the cut); one that fails to decode elsewhere is damaged.
 */
export function decodeRejection(declaredMs: number, d: DecodeCheck): Rejection | null {
  if (Math.abs(d.decodedMs - declaredMs) > durationTolerance(declaredMs)) {
    return {
      failure: CatalogFailure.TruncatedFile,
      reason:
        `The header announces ${minutes(declaredMs)} of audio but the file holds ${minutes(d.decodedMs)}` +
        `${d.error ? ` (${d.error})` : ''}; the upload or export was cut short. Upload it again.`,
    };
  }
  if (d.error) {
    return {
      failure: CatalogFailure.CorruptFile,
      reason: `The audio could not be decoded at ${minutes(d.decodedMs)} (${d.error}); export the file again.`,
    };
  }
  return null;
}

/** The streaming ladder: Ogg Vorbis at three bitrates (the encoders Debian's ffmpeg ships). */
export const QUALITIES = ['low', 'normal', 'high'] as const;
export type Quality = (typeof QUALITIES)[number];
export const LADDER: readonly { quality: Quality; bitrateKbps: number }[] = [
  { quality: 'low', bitrateKbps: 96 },
  { quality: 'normal', bitrateKbps: 160 },
  { quality: 'high', bitrateKbps: 320 },
];
export const RENDITION_CODEC = { codec: 'vorbis', container: 'ogg', contentType: 'audio/ogg' } as const;

export type Tier = 'free' | 'premium';
/** Free listeners stream up to 160 kbps, premium up to 320. */
export const TIER_MAX_KBPS: Record<Tier, number> = { free: 160, premium: 320 };

export const qualitiesFor = (tier: Tier) => LADDER.filter((r) => r.bitrateKbps <= TIER_MAX_KBPS[tier]);

/** Cover art: a JPEG or PNG of at most 20 MB, square, at least 640 px a side; stored at these sizes. */
export const COVER_MAX_BYTES = 20 * 1024 * 1024;
export const COVER_EXTENSIONS = ['jpg', 'jpeg', 'png'];
export const COVER_MIN_PX = 640;
export const COVER_SIZES = [640, 300] as const;

export function coverRejection(width: number | null, height: number | null): Rejection | null {
  if (!width || !height) {
    return {
      failure: CatalogFailure.CoverUnreadable,
      reason: 'The cover art is not a readable JPEG or PNG image; upload it again.',
    };
  }
  if (width !== height) {
    return {
      failure: CatalogFailure.CoverNotSquare,
      reason: `The cover art is ${width}×${height} px; it must be square.`,
    };
  }
  if (width < COVER_MIN_PX) {
    return {
      failure: CatalogFailure.CoverTooSmall,
      reason: `The cover art is ${width}×${height} px; it must be at least ${COVER_MIN_PX}×${COVER_MIN_PX} px.`,
    };
  }
  return null;
}
