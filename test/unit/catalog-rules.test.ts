import { ffmpegError } from '../../activities/catalog/ffmpeg';
import { displayName, extensionOf, namePattern } from '../../api/routes/uploads';
import { searchRequest, suggestRequest, typeOfIndex } from '../../api/queries/search';
import {
  audioRejection,
  coverRejection,
  decodeRejection,
  qualitiesFor,
  type AudioInspection,
} from '../../domain/catalog/audio';
import { CatalogFailure } from '../../domain/catalog/failures';

/** The catalog's pure rules: what audio and art it takes, the ladder per tier, names, search requests. */
const good: AudioInspection = {
  bytes: 30_000_000,
  maxBytes: 100_000_000,
  sha256: 'b'.repeat(64),
  extension: 'flac',
  detected: 'flac',
  format: 'flac',
  codec: 'FLAC',
  container: 'FLAC',
  lossless: true,
  durationMs: 200_000,
  sampleRateHz: 44_100,
  bitDepth: 16,
  channels: 2,
  parseError: null,
  truncatedHeader: false,
};
const failureOf = (over: Partial<AudioInspection>) => audioRejection({ ...good, ...over })?.failure ?? null;

describe('audio rules', () => {
  it('takes good audio in each format, lossy at any rate, lossless from 44.1 kHz', () => {
    expect(failureOf({})).toBeNull();
    expect(
      failureOf({ format: 'mp3', detected: 'mp3', extension: 'mp3', lossless: false, sampleRateHz: 22_050 }),
    ).toBeNull();
    expect(
      failureOf({ format: 'ogg', detected: 'opus', extension: 'opus', codec: 'Opus', lossless: false }),
    ).toBeNull();
    expect(failureOf({ format: 'wav', detected: 'wav', extension: 'wave' })).toBeNull();
    expect(failureOf({ sampleRateHz: 44_099 })).toBe(CatalogFailure.SampleRateTooLow);
  });

  it('names the first thing wrong, in the order a creator should fix them', () => {
    expect(failureOf({ bytes: 0 })).toBe(CatalogFailure.EmptyFile);
    expect(failureOf({ bytes: 100_000_001 })).toBe(CatalogFailure.FileTooLarge);
    expect(failureOf({ format: null, detected: null })).toBe(CatalogFailure.CorruptFile);
    expect(failureOf({ format: null, detected: 'png' })).toBe(CatalogFailure.UnsupportedFormat);
    expect(failureOf({ extension: 'mp3' })).toBe(CatalogFailure.ExtensionMismatch);
    expect(failureOf({ extension: 'mp3', durationMs: 5_000 })).toBe(CatalogFailure.ExtensionMismatch);
    expect(failureOf({ parseError: 'End-Of-Stream' })).toBe(CatalogFailure.CorruptFile);
    expect(failureOf({ truncatedHeader: true })).toBe(CatalogFailure.TruncatedFile);
    expect(
      failureOf({ format: 'ogg', detected: 'ogg', extension: 'ogg', codec: 'Speex', lossless: false }),
    ).toBe(CatalogFailure.UnsupportedFormat);
  });

  it('takes 30 s to 3 h inclusive', () => {
    expect(failureOf({ durationMs: 29_999 })).toBe(CatalogFailure.TooShort);
    expect(failureOf({ durationMs: 30_000 })).toBeNull();
    expect(failureOf({ durationMs: 3 * 3_600_000 })).toBeNull();
    expect(failureOf({ durationMs: 3 * 3_600_000 + 1 })).toBe(CatalogFailure.TooLong);
    expect(audioRejection({ ...good, durationMs: 3 * 3_600_000 + 61_000 })?.reason).toBe(
      'The track lasts 3 h 1 min; tracks may last 3 h at most.',
    );
  });

  it('calls audio that decodes to less than announced truncated, and a decode error elsewhere corrupt', () => {
    expect(decodeRejection(200_000, { decodedMs: 199_000, error: null })).toBeNull();
    expect(decodeRejection(200_000, { decodedMs: 195_900, error: null })?.failure).toBe(
      CatalogFailure.TruncatedFile,
    );
    expect(decodeRejection(40_000, { decodedMs: 39_100, error: null })).toBeNull();
    expect(decodeRejection(200_000, { decodedMs: 90_000, error: 'invalid residual' })?.failure).toBe(
      CatalogFailure.TruncatedFile,
    );
    expect(decodeRejection(200_000, { decodedMs: 200_000, error: 'invalid residual' })?.failure).toBe(
      CatalogFailure.CorruptFile,
    );
  });

  it('gives free listeners up to 160 kbps and premium up to 320', () => {
    expect(qualitiesFor('free').map((q) => q.bitrateKbps)).toEqual([96, 160]);
    expect(qualitiesFor('premium').map((q) => q.bitrateKbps)).toEqual([96, 160, 320]);
  });

  it('takes square cover art of at least 640 px', () => {
    expect(coverRejection(640, 640)).toBeNull();
    expect(coverRejection(639, 639)?.failure).toBe(CatalogFailure.CoverTooSmall);
    expect(coverRejection(1000, 999)?.failure).toBe(CatalogFailure.CoverNotSquare);
    expect(coverRejection(null, null)?.failure).toBe(CatalogFailure.CoverUnreadable);
  });
});

describe('upload names', () => {
  it('accepts in the schema only names that end in a taken extension, in any case', () => {
    const audio = new RegExp(namePattern(['flac', 'mp3']));
    expect(['Song.FLAC', 'a b.mp3', '../x/y.Flac', ' .flac'].map((n) => audio.test(n))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(
      ['song.exe', 'dir/.flac', 'song.flac.txt', '\u0001.flac', 'flac'].map((n) => audio.test(n)),
    ).toEqual([false, false, false, false, false]);
  });

  it('keeps the file name only, without folders or control characters', () => {
    expect(displayName('../../etc/passwd.flac')).toBe('passwd.flac');
    expect(displayName('C:\\Users\\me\\Music\\Song.FLAC')).toBe('Song.FLAC');
    expect(displayName('bad\u0000na\u001bme.wav')).toBe('badname.wav');
    expect(displayName('  Sigur Rós – Svefn-g-englar.flac  ')).toBe('Sigur Rós – Svefn-g-englar.flac');
    expect(displayName('x'.repeat(300) + '.flac')).toHaveLength(255);
    expect(extensionOf('Song.FLAC')).toBe('flac');
    expect(extensionOf('.flac')).toBe('flac');
    expect(extensionOf('README')).toBe('');
    expect(extensionOf('archive.tar.gz')).toBe('gz');
  });
});

describe('search requests', () => {
  const none = { excludeExplicit: false, country: null };
  const filters = (r: ReturnType<typeof searchRequest>) =>
    (r.body.query as { function_score: { query: { bool: { filter: object[] } } } }).function_score.query.bool
      .filter;

  it('searches the prefixed alias with popularity multiplied in and newer releases first on a tie', () => {
    const r = searchRequest('track', 'midnight', none, { size: 20, from: 0 }, 'p-');
    expect(r.index).toBe('p-tracks');
    expect(r.body.query).toMatchObject({
      function_score: {
        functions: [{ field_value_factor: { field: 'play_count', modifier: 'log1p' } }, { weight: 1 }],
        score_mode: 'sum',
        boost_mode: 'multiply',
      },
    });
    expect(r.body.sort).toEqual([
      { _score: { order: 'desc' } },
      { release_date: { order: 'desc' } },
      { track_id: 'asc' },
    ]);
    expect(filters(r)).toEqual([{ term: { status: 'available' } }]);
  });

  it('adds the parental-controls and market filters only when asked', () => {
    const r = searchRequest('track', 'x', { excludeExplicit: true, country: 'DE' }, { size: 1, from: 0 });
    expect(filters(r)).toEqual([
      { term: { status: 'available' } },
      { term: { explicit: false } },
      {
        bool: {
          should: [
            { bool: { must_not: { exists: { field: 'territories' } } } },
            { term: { territories: 'DE' } },
          ],
          minimum_should_match: 1,
        },
      },
    ]);
    expect(
      filters(searchRequest('artist', 'x', { excludeExplicit: true, country: 'DE' }, { size: 1, from: 0 })),
    ).toEqual([{ range: { track_count: { gt: 0 } } }]);
  });

  it('suggests over three indices and names each hit by its index', () => {
    expect(suggestRequest('mid', none, 8, 'p-').index).toBe('p-tracks,p-artists,p-albums');
    expect(typeOfIndex('p-tracks-v2', 'p-')).toBe('track');
    expect(typeOfIndex('p-albums-v13', 'p-')).toBe('album');
    expect(typeOfIndex('other', 'p-')).toBeUndefined();
  });
});

describe("ffmpeg's log", () => {
  it('names the first error it logged, without its codec and level prefixes, and never the CPU line', () => {
    const stderr = [
      '[info] Input #0, flac, from original.flac:',
      '[info] bench: utime=0.812s stime=0.051s rtime=5.1s',
      '[flac @ 0x55d0c2a1e2c0] [error] invalid sync code',
      '[fatal] Conversion failed!',
    ].join('\n');
    expect(ffmpegError(stderr)).toBe('invalid sync code');
    expect(ffmpegError('[info] bench: utime=0.1s stime=0.0s rtime=0.2s\n[info] size=N/A')).toBe('size=N/A');
  });
});
