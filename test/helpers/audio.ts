import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * Real audio for tests, generated with Debian's ffmpeg (lavfi sources): every file is different (its tone
 * comes from `seed`), so checksums never collide unless a test wants them to.
 */
const run = promisify(execFile);

export const audioDir = () => mkdtempSync(path.join(tmpdir(), 'cadenza-audio-'));

export interface AudioSpec {
  format: 'flac' | 'wav' | 'mp3' | 'ogg' | 'opus';
  seconds: number;
  sampleRate?: number;
  channels?: 1 | 2;
  /** WAV and FLAC sample format (s16 or s32 for 24-bit-in-32). */
  sampleFormat?: 's16' | 's32';
  seed?: number;
  /** Pink noise under the tone, so lossy encoders have something to encode. */
  noise?: boolean;
  /** Lossy bitrate (kbps): long files stay small at a low one. */
  kbps?: number;
}

const CODEC: Record<AudioSpec['format'], string[]> = {
  flac: ['-c:a', 'flac'],
  wav: ['-c:a', 'pcm_s16le'],
  mp3: ['-c:a', 'libmp3lame', '-b:a', '192k'],
  ogg: ['-c:a', 'libvorbis', '-q:a', '5'],
  opus: ['-c:a', 'libopus', '-b:a', '128k', '-f', 'ogg'],
};

export async function makeAudio(dir: string, name: string, spec: AudioSpec): Promise<string> {
  const rate = spec.sampleRate ?? 44_100;
  const freq = 220 + (spec.seed ?? 0) * 7.3;
  const file = path.join(dir, name);
  const inputs = ['-f', 'lavfi', '-i', `sine=frequency=${freq}:sample_rate=${rate}:duration=${spec.seconds}`];
  const filters: string[] = [];
  if (spec.noise) {
    inputs.push(
      '-f',
      'lavfi',
      '-i',
      `anoisesrc=color=pink:sample_rate=${rate}:duration=${spec.seconds}:amplitude=0.05:seed=${spec.seed ?? 1}`,
    );
    filters.push('-filter_complex', '[0][1]amix=inputs=2:duration=shortest');
  }
  const codec =
    spec.format === 'wav' && spec.sampleFormat === 's32'
      ? ['-c:a', 'pcm_s24le']
      : spec.format === 'flac' && spec.sampleFormat === 's32'
        ? ['-c:a', 'flac', '-sample_fmt', 's32']
        : spec.kbps
          ? [...CODEC[spec.format].filter((a) => !/^(-b:a|-q:a|\d+k|\d)$/.test(a)), '-b:a', `${spec.kbps}k`]
          : CODEC[spec.format];
  await run('ffmpeg', [
    '-v',
    'error',
    '-y',
    ...inputs,
    ...filters,
    '-ac',
    String(spec.channels ?? 2),
    ...codec,
    file,
  ]);
  return file;
}

/** The first `fraction` of a file: an upload cut short. */
export async function truncated(file: string, fraction: number, out: string): Promise<string> {
  const data = await readFile(file);
  await writeFile(out, data.subarray(0, Math.floor(data.length * fraction)));
  return out;
}

/**
 * A FLAC whose STREAMINFO announces `seconds` of audio, whatever its frames hold: the cheap way to present a
 * track longer than 3 hours (a real one would take minutes to encode). STREAMINFO's 36-bit sample count
 * starts 108 bits into the block, which follows "fLaC" and a 4-byte block header.
 */
export async function flacClaiming(file: string, seconds: number, sampleRate: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const head = Buffer.alloc(42);
    await handle.read(head, 0, 42, 0);
    if (head.toString('latin1', 0, 4) !== 'fLaC' || (head[4]! & 0x7f) !== 0)
      throw new Error('not a FLAC with STREAMINFO first');
    const samples = Math.round(seconds * sampleRate);
    head[21] = (head[21]! & 0xf0) | Math.floor(samples / 2 ** 32);
    head.writeUInt32BE(samples % 2 ** 32, 22);
    await handle.write(head, 0, 42, 0);
  } finally {
    await handle.close();
  }
}

/** A cover image: `width`×`height` PNG or JPEG from a test pattern. */
export async function makeImage(dir: string, name: string, width: number, height: number): Promise<string> {
  const file = path.join(dir, name);
  await run('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `testsrc=size=${width}x${height}:rate=1`,
    '-frames:v',
    '1',
    file,
  ]);
  return file;
}

/** What ffprobe says of an audio file or URL: codec, bitrate, sample rate, channels, duration. */
export async function probe(
  source: string,
): Promise<{ codec: string; bitRate: number; sampleRate: number; channels: number; durationS: number }> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-select_streams',
    'a:0',
    '-show_entries',
    'stream=codec_name,sample_rate,channels,bit_rate:format=duration,bit_rate',
    '-of',
    'json',
    source,
  ]);
  const j = JSON.parse(stdout) as {
    streams: { codec_name: string; sample_rate: string; channels: number; bit_rate?: string }[];
    format: { duration: string; bit_rate?: string };
  };
  const s = j.streams[0]!;
  return {
    codec: s.codec_name,
    bitRate: Number(s.bit_rate ?? j.format.bit_rate ?? 0),
    sampleRate: Number(s.sample_rate),
    channels: s.channels,
    durationS: Number(j.format.duration),
  };
}
