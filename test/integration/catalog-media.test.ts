import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { sql } from 'slonik';
import { createMediaActivities } from '../../activities/catalog/media';
import { audioRejection, decodeRejection } from '../../domain/catalog/audio';
import { uploadKey } from '../../domain/catalog/keys';
import { bucketName } from '../../lib/clients/minio';
import { CatalogFailure } from '../../workflows/catalog/contract';
import { audioDir, flacClaiming, makeAudio, makeImage, probe, truncated } from '../helpers/audio';
import { catalogStores, newArtist, objectKeys, type CatalogStores } from '../helpers/catalog';

/**
 * The ffmpeg side of ingestion on real, generated audio in several formats and sample rates, against the
 * real object store: what inspection reads, which files the rules refuse and why, loudness, the transcode
 * ladder, cancellation, cover art.
 */
describe('catalog media steps on real audio', () => {
  let s: CatalogStores;
  let media: ReturnType<typeof createMediaActivities>;
  let artistId: string;
  const dir = audioDir();
  const MAX = 6 * 1024 * 1024;

  beforeAll(async () => {
    s = await catalogStores();
    media = createMediaActivities({ ...s.deps, maxUploadBytes: MAX });
    artistId = await newArtist(s.pool);
  }, 60_000);
  afterAll(() => s?.drop());

  // Refusals are expected here: the activity logger reports errors only.
  const env = () => new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
  /** Runs an activity in a fresh activity context, typed by the activity. */
  const act = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> =>
    env().run(fn, ...args) as Promise<R>;

  /** An upload row and its staging object, as the API would leave them. */
  async function staged(
    file: string | Buffer,
    filename: string,
    kind: 'audio' | 'cover' = 'audio',
  ): Promise<string> {
    const uploadId = randomUUID();
    const body = typeof file === 'string' ? readFileSync(file) : file;
    await s.pool.query(sql.unsafe`
      INSERT INTO uploads (upload_id, artist_id, kind, filename, extension, content_type, declared_bytes, object_key, expires_at)
      VALUES (${uploadId}, ${artistId}, ${kind}, ${filename}, ${filename.split('.').pop()!.toLowerCase()},
              'application/octet-stream', ${Math.max(1, body.length)}, ${uploadKey(uploadId)}, now() + interval '2 days')`);
    await s.minio.putObject(bucketName('staging', s.cfg.minio.bucketPrefix), uploadKey(uploadId), body);
    return uploadId;
  }

  const inspect = async (file: string | Buffer, filename: string) =>
    act(media.inspectUpload, { uploadId: await staged(file, filename), artistId });

  it('reads format, codec, duration, sample rate, bit depth and channels, and hashes the bytes', async () => {
    const cases = [
      {
        name: 'a.flac',
        spec: { format: 'flac', seconds: 31, sampleRate: 44_100 },
        want: { format: 'flac', lossless: true, sampleRateHz: 44_100, bitDepth: 16, channels: 2 },
      },
      {
        name: 'b.wav',
        spec: { format: 'wav', seconds: 32, sampleRate: 48_000, sampleFormat: 's32', channels: 1 },
        want: { format: 'wav', lossless: true, sampleRateHz: 48_000, bitDepth: 24, channels: 1 },
      },
      {
        name: 'c.mp3',
        spec: { format: 'mp3', seconds: 33, sampleRate: 44_100 },
        want: { format: 'mp3', lossless: false, sampleRateHz: 44_100, channels: 2 },
      },
      {
        name: 'd.ogg',
        spec: { format: 'ogg', seconds: 34, sampleRate: 48_000 },
        want: { format: 'ogg', lossless: false, sampleRateHz: 48_000, channels: 2 },
      },
      {
        name: 'e.opus',
        spec: { format: 'opus', seconds: 35, sampleRate: 48_000 },
        want: { format: 'ogg', lossless: false, sampleRateHz: 48_000, channels: 2 },
      },
      {
        name: 'f.flac',
        spec: { format: 'flac', seconds: 36, sampleRate: 96_000, sampleFormat: 's32' },
        want: { format: 'flac', lossless: true, sampleRateHz: 96_000, bitDepth: 24, channels: 2 },
      },
    ] as const;
    for (const [i, c] of cases.entries()) {
      const file = await makeAudio(dir, c.name, { ...c.spec, seed: i });
      const found = await inspect(file, c.name);
      expect({ name: c.name, ...found }).toMatchObject({
        name: c.name,
        ...c.want,
        parseError: null,
        truncatedHeader: false,
      });
      expect(Math.abs((found.durationMs ?? 0) - c.spec.seconds * 1000)).toBeLessThan(100);
      expect(found.sha256).toBe(createHash('sha256').update(readFileSync(file)).digest('hex'));
      expect(audioRejection(found)).toBeNull();
    }
  }, 120_000);

  it('refuses what a creator must fix, each with its own reason', async () => {
    const good = await makeAudio(dir, 'good.flac', { format: 'flac', seconds: 31, seed: 40 });
    const mp3 = await makeAudio(dir, 'song.mp3', { format: 'mp3', seconds: 31, seed: 41 });
    const wav = await makeAudio(dir, 'long.wav', { format: 'wav', seconds: 40, seed: 42 });
    const long = await makeAudio(dir, 'long.flac', { format: 'flac', seconds: 31, seed: 43 });
    await flacClaiming(long, 3 * 3600 + 1, 44_100);
    const png = await makeImage(dir, 'cover.png', 64, 64);
    const big = Buffer.concat([readFileSync(good), Buffer.alloc(MAX)]);
    const cases: [string, string | Buffer, string, CatalogFailure, RegExp][] = [
      ['zero-length', Buffer.alloc(0), 'empty.flac', CatalogFailure.EmptyFile, /empty/],
      ['too large', big, 'big.flac', CatalogFailure.FileTooLarge, /at most 6291456 bytes/],
      [
        'random bytes',
        Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 7919) % 251)),
        'noise.flac',
        CatalogFailure.CorruptFile,
        /not recognisable audio/,
      ],
      [
        'FLAC magic then garbage',
        Buffer.concat([Buffer.from('fLaC'), Buffer.alloc(20_000, 7)]),
        'bad.flac',
        CatalogFailure.CorruptFile,
        /could not be read/,
      ],
      [
        'MP3 named .flac',
        mp3,
        'song.flac',
        CatalogFailure.ExtensionMismatch,
        /ends in \.flac but the file is MP3/,
      ],
      ['an image', png, 'track.flac', CatalogFailure.UnsupportedFormat, /PNG/],
      [
        'too short',
        await makeAudio(dir, 'short.flac', { format: 'flac', seconds: 12, seed: 44 }),
        'short.flac',
        CatalogFailure.TooShort,
        /0 min 12 s; tracks must last at least 30 s/,
      ],
      [
        'longer than 3 h (FLAC header)',
        long,
        'long.flac',
        CatalogFailure.TooLong,
        /3 h 0 min; tracks may last 3 h at most/,
      ],
      [
        'lossless at 22.05 kHz',
        await makeAudio(dir, 'low.flac', { format: 'flac', seconds: 31, sampleRate: 22_050, seed: 45 }),
        'low.flac',
        CatalogFailure.SampleRateTooLow,
        /22050 Hz/,
      ],
      [
        'WAV cut short',
        await truncated(wav, 0.5, path.join(dir, 'cut.wav')),
        'cut.wav',
        CatalogFailure.TruncatedFile,
        /cut short/,
      ],
    ];
    for (const [what, file, name, failure, reason] of cases) {
      const rejection = audioRejection(await inspect(file, name));
      expect({ what, failure: rejection?.failure }).toEqual({ what, failure });
      expect(rejection?.reason).toMatch(reason);
    }
  }, 120_000);

  it('refuses an upload whose staging object is gone as expired', async () => {
    const uploadId = await staged(Buffer.from('x'), 'gone.flac');
    await s.minio.removeObject(bucketName('staging', s.cfg.minio.bucketPrefix), uploadKey(uploadId));
    await expect(act(media.inspectUpload, { uploadId, artistId })).rejects.toMatchObject({
      type: CatalogFailure.UploadExpired,
      nonRetryable: true,
      message: expect.stringMatching(/upload the file again/),
    });
  });

  it('measures EBU R128 loudness and finds files that decode to less than they announce', async () => {
    const file = await makeAudio(dir, 'loud.flac', { format: 'flac', seconds: 31, seed: 50, noise: true });
    const loud = await act(media.measureLoudness, { uploadId: await staged(file, 'loud.flac') });
    expect(loud.error).toBeNull();
    expect(loud.integratedLufs).toBeGreaterThan(-40);
    expect(loud.integratedLufs).toBeLessThan(-5);
    expect(loud.truePeakDbtp).toBeLessThan(1);
    expect(Math.abs(loud.decodedMs - 31_000)).toBeLessThan(200);
    expect(loud.cpuMs).toBeGreaterThan(0);

    for (const [name, spec] of [
      ['cut.flac', { format: 'flac', seconds: 40, seed: 51, noise: true }],
      ['cut.mp3', { format: 'mp3', seconds: 40, seed: 52, noise: true }],
    ] as const) {
      const whole = await makeAudio(dir, `whole-${name}`, spec);
      const found = await inspect(await truncated(whole, 0.5, path.join(dir, name)), name);
      expect(audioRejection(found)).toBeNull(); // the header still announces 40 s
      const decoded = await act(media.measureLoudness, {
        uploadId: await staged(path.join(dir, name), name),
      });
      expect({ name, failure: decodeRejection(found.durationMs!, decoded)?.failure }).toEqual({
        name,
        failure: CatalogFailure.TruncatedFile,
      });
    }
  }, 120_000);

  it('transcodes the ladder to Ogg Vorbis at 96, 160 and 320 kbps, 44.1 kHz stereo, tags stripped', async () => {
    const file = await makeAudio(dir, 'ladder.wav', {
      format: 'wav',
      seconds: 31,
      sampleRate: 48_000,
      seed: 60,
      noise: true,
    });
    const trackId = randomUUID();
    const beats: unknown[] = [];
    const e = env();
    e.on('heartbeat', (d: unknown) => beats.push(d));
    const out = (await e.run(media.transcodeLadder, {
      uploadId: await staged(file, 'ladder.wav'),
      trackId,
      durationMs: 31_000,
    })) as Awaited<ReturnType<typeof media.transcodeLadder>>;
    expect(out.renditions.map((r) => [r.quality, r.bitrateKbps])).toEqual([
      ['low', 96],
      ['normal', 160],
      ['high', 320],
    ]);
    expect(await objectKeys(s, 'staging', `derived/${trackId}/`)).toEqual(
      ['high', 'low', 'normal'].map((q) => `derived/${trackId}/${q}.ogg`),
    );
    for (const r of out.renditions) {
      const url = await s.minio.presignedGetObject(
        bucketName('staging', s.cfg.minio.bucketPrefix),
        r.stagingKey,
        60,
      );
      const p = await probe(url);
      expect({
        q: r.quality,
        codec: p.codec,
        rate: p.sampleRate,
        ch: p.channels,
        kbps: Math.round(p.bitRate / 1000),
      }).toEqual({
        q: r.quality,
        codec: 'vorbis',
        rate: 44_100,
        ch: 2,
        kbps: r.bitrateKbps,
      });
      expect(Math.abs(p.durationS - 31)).toBeLessThan(0.2);
    }
    expect(beats.some((b) => (b as { step?: string }).step === 'transcode')).toBe(true);
  }, 120_000);

  it('kills ffmpeg when the transcode is cancelled, and writes no renditions', async () => {
    const file = await makeAudio(dir, 'cancel.flac', { format: 'flac', seconds: 600, seed: 70, noise: true });
    const trackId = randomUUID();
    const uploadId = await staged(file, 'cancel.flac');
    const e = env();
    const started = new Promise<void>((resolve) => e.once('heartbeat', () => resolve()));
    const running = e.run(media.transcodeLadder, { uploadId, trackId, durationMs: 600_000 });
    await started;
    const ffmpegs = () =>
      execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l.startsWith('ffmpeg') && l.includes(uploadId));
    expect(ffmpegs()).toHaveLength(1);
    e.cancel();
    await expect(running).rejects.toBeInstanceOf(CancelledFailure);
    expect(ffmpegs()).toEqual([]);
    expect(await objectKeys(s, 'staging', `derived/${trackId}/`)).toEqual([]);
  }, 120_000);

  it('checks cover art (square, at least 640 px) and stores it at 640 and 300 px', async () => {
    const trackId = randomUUID();
    const ok = await act(media.prepareCover, {
      coverUploadId: await staged(await makeImage(dir, 'ok.png', 800, 800), 'ok.png', 'cover'),
      trackId,
      artistId,
    });
    expect(ok).toMatchObject({ width: 800, height: 800, rejection: null });
    expect(ok.stagingKeys.map((k) => k.size)).toEqual([640, 300]);
    const stored = path.join(dir, 'stored.jpg');
    writeFileSync(
      stored,
      Buffer.concat(
        await streamToChunks(
          await s.minio.getObject(bucketName('staging', s.cfg.minio.bucketPrefix), ok.stagingKeys[1]!.key),
        ),
      ),
    );
    expect(
      execFileSync(
        'ffprobe',
        ['-v', 'error', '-show_entries', 'stream=width,height', '-of', 'csv=p=0', stored],
        { encoding: 'utf8' },
      ).trim(),
    ).toBe('300,300');
    for (const [w, h, failure] of [
      [800, 600, CatalogFailure.CoverNotSquare],
      [300, 300, CatalogFailure.CoverTooSmall],
    ] as const) {
      const r = await act(media.prepareCover, {
        coverUploadId: await staged(await makeImage(dir, `c${w}x${h}.jpg`, w, h), `c${w}x${h}.jpg`, 'cover'),
        trackId: randomUUID(),
        artistId,
      });
      expect(r.rejection?.failure).toBe(failure);
      expect(r.stagingKeys).toEqual([]);
    }
  }, 60_000);
});

async function streamToChunks(stream: NodeJS.ReadableStream): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return chunks;
}
