import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { sql } from 'slonik';
import { z } from 'zod';
import { upcFor } from '../../scripts/seed/codes';
import { bucketName } from '../../lib/clients/minio';
import { uploadKey } from '../../domain/catalog/keys';
import { CatalogFailure } from '../../workflows/catalog/contract';
import { audioDir, flacClaiming, makeAudio, makeImage, truncated } from '../helpers/audio';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';
import {
  catalogSnapshot,
  catalogStores,
  catalogWorkers,
  newArtist,
  newListener,
  type CatalogStores,
} from '../helpers/catalog';
import { testConfig } from '../helpers/env';

/**
 * A creator's upload to a listener's stream, through the API, Temporal, a worker and the real stores, on
 * generated audio: valid uploads in four formats become searchable and streamable; bad files are refused
 * with a reason and leave nothing behind; cancellation and a conflict after promotion take everything back.
 */
const WORKER_MAX_BYTES = 5 * 1024 * 1024;

/** GET /v1/tracks/:id as the tests read it. */
interface TrackJson {
  status: string;
  title?: string;
  genres?: string[];
  catalogTrackId?: string | null;
  loudness: { integratedLufs: number };
  ingestion?: {
    status: string;
    step: string;
    percent?: number;
    failure: string | null;
    problemType: string | null;
    reason: string;
    finishedAt: string | null;
  } | null;
}

describe('track ingestion end to end (API → workflow → ffmpeg → stores → search → stream)', () => {
  let s: CatalogStores;
  let app: FastifyInstance;
  let workers: Awaited<ReturnType<typeof catalogWorkers>>;
  let artistId: string;
  let creator: string;
  const dir = audioDir();
  let isrcSeq = 0;
  let upcSeq = 0;

  beforeAll(async () => {
    s = await catalogStores(withTempIssuer(testConfig()), { maxUploadBytes: WORKER_MAX_BYTES });
    // Stream URLs of 3 seconds, so the test sees one expire.
    s.cfg = { ...s.cfg, catalog: { ...s.cfg.catalog, streamUrlTtlSeconds: 3 } };
    workers = await catalogWorkers(s.cfg, s.deps);
    app = await testApp(s.cfg, {
      temporal: workers.client,
      pool: s.pool,
      catalog: { minio: s.minio, signer: s.signer, opensearch: s.opensearch },
    });
    artistId = await newArtist(s.pool, 'Aurora Vale');
    creator = await tokenFor(s.cfg, artistId, ['creator']);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await workers?.stop();
    await s?.drop();
  }, 60_000);

  const isrc = () => `DEC0125${String(++isrcSeq + Math.floor(Math.random() * 90_000)).padStart(5, '0')}`;
  const upc = () => upcFor(700_000 + ++upcSeq * 13 + Math.floor(Math.random() * 1000));
  const call = (
    token: string,
    method: 'GET' | 'POST' | 'PUT' | 'PATCH',
    url: string,
    payload?: unknown,
    headers = {},
  ) => app.inject({ method, url, payload: payload as never, headers: { ...bearer(token), ...headers } });

  /** Uploads a file as a creator would: streamed through the API, or posted straight to MinIO. */
  async function upload(
    file: string | Buffer,
    filename: string,
    opts: { via?: 'put' | 'post'; contentType?: string; token?: string; kind?: 'audio' | 'cover' } = {},
  ) {
    const body = typeof file === 'string' ? readFileSync(file) : file;
    const token = opts.token ?? creator;
    const started = await call(token, 'POST', '/v1/uploads', {
      filename,
      contentType: opts.contentType ?? 'audio/flac',
      size: Math.max(1, body.length),
      ...(opts.kind ? { kind: opts.kind } : {}),
    });
    expect([started.statusCode, started.statusCode === 201 ? '' : started.body]).toEqual([201, '']);
    const { uploadId, post } = started.json() as {
      uploadId: string;
      post: { url: string; fields: Record<string, string> };
    };
    if (opts.via === 'post') {
      const form = new FormData();
      for (const [k, v] of Object.entries(post.fields)) form.append(k, v);
      form.append('file', new Blob([body]), filename);
      const res = await fetch(post.url, { method: 'POST', body: form });
      expect([res.status, res.status < 300 ? '' : await res.text()]).toEqual([204, '']);
    } else {
      const res = await call(token, 'PUT', `/v1/uploads/${uploadId}`, body, {
        'content-type': opts.contentType ?? 'application/octet-stream',
        'content-length': String(body.length),
      });
      expect(res.statusCode).toBe(200);
    }
    return uploadId;
  }

  function submission(uploadId: string, extra: Record<string, unknown> = {}) {
    return {
      uploadId,
      title: 'Northern Lights',
      album: { title: 'Polar Nights', upc: upc(), releaseDate: '2024-11-01' },
      isrc: isrc(),
      explicit: false,
      genres: ['electronic', 'ambient'],
      ...extra,
    };
  }

  async function submit(body: Record<string, unknown>, token = creator) {
    const res = await call(token, 'POST', '/v1/tracks', body);
    expect([res.statusCode, res.statusCode === 202 ? '' : res.body]).toEqual([202, '']);
    return res.json() as { trackId: string; workflowId: string; existing: boolean; statusUrl: string };
  }

  async function until(trackId: string, done: (t: TrackJson) => boolean, ms = 90_000, token = creator) {
    const deadline = Date.now() + ms;
    let last = {} as TrackJson;
    while (Date.now() < deadline) {
      const res = await call(token, 'GET', `/v1/tracks/${trackId}`);
      if (res.statusCode === 200) {
        last = res.json();
        if (done(last)) return last;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`track ${trackId} never got there; last seen ${JSON.stringify(last)}`);
  }
  /** The ingestion has recorded its end (after indexing, for a published track). */
  const ended = (t: TrackJson) => Boolean(t.ingestion?.finishedAt);

  async function searchIds(token: string, q: string, extra = '') {
    await s.opensearch.indices.refresh({ index: `${s.cfg.opensearch.indexPrefix}tracks` });
    const res = await call(token, 'GET', `/v1/search?q=${encodeURIComponent(q)}${extra}`);
    expect(res.statusCode).toBe(200);
    return (res.json().items as { id: string }[]).map((i) => i.id);
  }

  it('turns uploads in four formats into searchable, streamable tracks with the tier-allowed renditions', async () => {
    const files = [
      {
        name: 'Northern Lights.flac',
        spec: { format: 'flac', seconds: 32, sampleRate: 44_100 },
        via: 'post',
        type: 'audio/flac',
      },
      {
        name: 'take 2 (final).wav',
        spec: { format: 'wav', seconds: 33, sampleRate: 48_000, channels: 1 },
        via: 'put',
        type: 'audio/wav',
      },
      {
        name: 'demo.mp3',
        spec: { format: 'mp3', seconds: 34, sampleRate: 44_100 },
        via: 'put',
        type: 'audio/mpeg',
      },
      {
        name: 'live.ogg',
        spec: { format: 'ogg', seconds: 35, sampleRate: 48_000 },
        via: 'put',
        type: 'application/json',
      },
    ] as const;
    const titles = ['Northern Lights', 'Glacier Echoes', 'Midnight Harbour', 'Explicit Thunder'];
    const cover = await upload(await makeImage(dir, 'cover.png', 700, 700), 'cover.png', {
      contentType: 'image/png',
      kind: 'cover',
    });
    const tracks = await Promise.all(
      files.map(async (f, i) => {
        const file = await makeAudio(dir, `ok-${i}.${f.spec.format}`, {
          ...f.spec,
          seed: 100 + i,
          noise: true,
        });
        const uploadId = await upload(file, f.name, { via: f.via, contentType: f.type });
        const body = submission(uploadId, {
          title: titles[i],
          explicit: i === 3,
          ...(i === 0 ? { coverUploadId: cover } : {}),
        });
        return { ...(await submit(body)), body };
      }),
    );
    for (const t of tracks) {
      const done = await until(t.trackId, ended);
      expect(done).toMatchObject({
        status: 'available',
        title: t.body.title,
        artistId,
        explicit: t.body.explicit,
        genres: ['electronic', 'ambient'],
        renditions: [
          { quality: 'low', bitrateKbps: 96, codec: 'vorbis' },
          { quality: 'normal', bitrateKbps: 160, codec: 'vorbis' },
          { quality: 'high', bitrateKbps: 320, codec: 'vorbis' },
        ],
        ingestion: { status: 'available', step: 'done', failure: null, reason: null },
      });
      expect(done.loudness.integratedLufs).toBeLessThan(0);
    }
    const [flac] = tracks;
    // The cover came with the first track, at both sizes; staging holds nothing of any of them.
    expect((await catalogSnapshot(s)).covers).toEqual([
      `${flac!.trackId}/cover-300.jpg`,
      `${flac!.trackId}/cover-640.jpg`,
    ]);
    expect((await catalogSnapshot(s)).staging).toEqual([]);

    const free = await tokenFor(s.cfg, await newListener(s.pool, { tier: 'free' }), ['listener']);
    const premium = await tokenFor(s.cfg, await newListener(s.pool, { tier: 'premium' }), ['listener']);
    const child = await tokenFor(s.cfg, await newListener(s.pool, { parental: true }), ['listener']);
    // Typo tolerance through the API: "Nothern Lihgts" finds "Northern Lights".
    expect(await searchIds(free, 'Nothern Lihgts')).toContain(flac!.trackId);
    expect(await searchIds(free, 'Explicit Thunder')).toContain(tracks[3]!.trackId);
    expect(await searchIds(child, 'Explicit Thunder')).not.toContain(tracks[3]!.trackId);
    expect(await searchIds(free, 'Explicit Thunder', '&explicit=false')).not.toContain(tracks[3]!.trackId);

    const stream = (token: string, id: string, q = '') => call(token, 'GET', `/v1/tracks/${id}/stream${q}`);
    const freeStream = await stream(free, flac!.trackId);
    expect(freeStream.statusCode).toBe(200);
    expect(freeStream.json()).toMatchObject({ quality: 'normal', bitrateKbps: 160, codec: 'vorbis' });
    expect(freeStream.json().renditions.map((r: { quality: string }) => r.quality)).toEqual([
      'low',
      'normal',
    ]);
    const audio = await fetch(freeStream.json().url);
    expect([audio.status, audio.headers.get('content-type')]).toEqual([200, 'audio/ogg']);
    expect(
      Buffer.from(await audio.arrayBuffer())
        .subarray(0, 4)
        .toString('latin1'),
    ).toBe('OggS');
    expect((await stream(free, flac!.trackId, '?quality=high')).json()).toMatchObject({
      status: 403,
      type: 'urn:cadenza:problem:premium-required',
    });
    expect((await stream(premium, flac!.trackId)).json()).toMatchObject({
      quality: 'high',
      bitrateKbps: 320,
    });
    expect((await stream(child, tracks[3]!.trackId)).json()).toMatchObject({
      status: 403,
      type: 'urn:cadenza:problem:explicit-blocked',
    });

    // Expiry: the URL works now and not after its 3 seconds.
    const short = (await stream(premium, tracks[1]!.trackId)).json();
    expect((await fetch(short.url)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 4500));
    expect((await fetch(short.url)).status).toBe(403);

    // The ClickHouse dimension has every track.
    expect((await catalogSnapshot(s)).dimTracks).toEqual(
      expect.arrayContaining(tracks.map((t) => t.trackId)),
    );
  }, 240_000);

  it('takes a track down (410, unsearchable), restores it, and edits it: PostgreSQL, search and ClickHouse in step', async () => {
    const uploadId = await upload(
      await makeAudio(dir, 'td.flac', { format: 'flac', seconds: 31, seed: 200 }),
      'td.flac',
    );
    const { trackId } = await submit(submission(uploadId, { title: 'Saffron Tide' }));
    await until(trackId, ended);
    const listener = await tokenFor(s.cfg, await newListener(s.pool), ['listener']);
    const operator = await tokenFor(s.cfg, 'ops-1', ['operator']);
    const dim = async () =>
      (
        await (
          await s.clickhouse.query({
            query: `SELECT status FROM dim_tracks FINAL WHERE track_id = toUUID('${trackId}')`,
            format: 'JSONEachRow',
          })
        ).json<{ status: string }>()
      )[0]?.status;
    const changed = async (res: Awaited<ReturnType<typeof call>>, status: string) => {
      expect(res.statusCode).toBe(202);
      await workers.client.workflow.getHandle(res.json().workflowId).result();
      await until(trackId, (t) => t.status === status, 10_000, operator);
    };

    expect(
      (await call(creator, 'POST', `/v1/tracks/${trackId}/takedown`, { reason: 'copyright' })).statusCode,
    ).toBe(403);
    await changed(
      await call(operator, 'POST', `/v1/tracks/${trackId}/takedown`, { reason: 'copyright' }),
      'taken_down',
    );
    expect((await call(listener, 'GET', `/v1/tracks/${trackId}/stream`)).statusCode).toBe(410);
    expect(await searchIds(listener, 'Saffron Tide')).not.toContain(trackId);
    expect(await dim()).toBe('taken_down');
    const audit = await s.pool.anyFirst(sql.type(z.object({ action: z.string() }))`
      SELECT action FROM audit_log WHERE subject_id = ${trackId} ORDER BY audit_id`);
    expect(audit).toEqual(['catalog.takedown']);
    // Only an operator restores what Cadenza took down.
    expect((await call(creator, 'POST', `/v1/tracks/${trackId}/restore`)).statusCode).toBe(403);
    await changed(await call(operator, 'POST', `/v1/tracks/${trackId}/restore`), 'available');
    expect((await call(listener, 'GET', `/v1/tracks/${trackId}/stream`)).statusCode).toBe(200);
    expect(await searchIds(listener, 'Saffron Tide')).toContain(trackId);
    expect(await dim()).toBe('available');

    const edit = await call(
      creator,
      'PATCH',
      `/v1/tracks/${trackId}`,
      { title: 'Saffron Tides', genres: ['jazz'] },
      { 'idempotency-key': 'edit-1' },
    );
    await changed(edit, 'available');
    // The same Idempotency-Key is the same change: it is not started again; with another change it is refused.
    const repeat = (title: string) =>
      call(
        creator,
        'PATCH',
        `/v1/tracks/${trackId}`,
        { title, genres: ['jazz'] },
        { 'idempotency-key': 'edit-1' },
      );
    expect((await repeat('Saffron Tides')).json().existing).toBe(true);
    expect((await repeat('Something Else')).statusCode).toBe(422);
    expect(await until(trackId, (t) => t.title === 'Saffron Tides', 5000)).toMatchObject({
      genres: ['jazz'],
    });
    await s.opensearch.indices.refresh({ index: `${s.cfg.opensearch.indexPrefix}tracks` });
    const { body } = await s.opensearch.get({ index: `${s.cfg.opensearch.indexPrefix}tracks`, id: trackId });
    expect(body._source).toMatchObject({ title: 'Saffron Tides', genres: ['jazz'], status: 'available' });
  }, 120_000);

  it('makes one track of one upload submitted twice, and finds the same audio uploaded again', async () => {
    const file = await makeAudio(dir, 'dup.flac', { format: 'flac', seconds: 31, seed: 300 });
    const uploadId = await upload(file, 'dup.flac');
    const body = submission(uploadId);
    const first = await submit(body);
    const second = await submit(body);
    expect(second).toMatchObject({ trackId: first.trackId, workflowId: first.workflowId, existing: true });
    await until(first.trackId, ended);
    const count = () =>
      s.pool.oneFirst(
        sql.type(
          z.object({ n: z.number() }),
        )`SELECT count(*)::int AS n FROM tracks WHERE isrc = ${body.isrc}`,
      );
    expect(await count()).toBe(1);

    // The same audio, same artist and ISRC, uploaded again: the existing track, nothing new.
    const again = await submit({
      ...submission(await upload(file, 'dup again.flac')),
      isrc: body.isrc,
      album: body.album,
    });
    expect(await until(again.trackId, ended)).toMatchObject({
      status: 'duplicate',
      catalogTrackId: first.trackId,
    });
    expect(await count()).toBe(1);

    // The same audio from another artist: refused, left for review.
    const other = await newArtist(s.pool, 'Someone Else');
    const otherToken = await tokenFor(s.cfg, other, ['creator']);
    const stolen = await submit(
      submission(await upload(file, 'mine.flac', { token: otherToken })),
      otherToken,
    );
    expect(await until(stolen.trackId, ended, 60_000, otherToken)).toMatchObject({
      status: 'rejected',
      ingestion: {
        failure: CatalogFailure.DuplicateOfOtherArtist,
        problemType: 'urn:cadenza:problem:duplicate-of-other-artist',
      },
    });
    // Other audio with an ISRC the catalog knows: refused.
    const reused = await submit({
      ...submission(
        await upload(
          await makeAudio(dir, 'other.flac', { format: 'flac', seconds: 31, seed: 301 }),
          'other.flac',
        ),
      ),
      isrc: body.isrc,
    });
    expect(await until(reused.trackId, ended)).toMatchObject({
      status: 'rejected',
      ingestion: { failure: CatalogFailure.IsrcInUse },
    });
  }, 180_000);

  it('refuses bad files with a reason a creator can act on, and leaves nothing behind', async () => {
    const before = await catalogSnapshot(s);
    const mp3 = await makeAudio(dir, 'x.mp3', { format: 'mp3', seconds: 31, seed: 400 });
    const long = await makeAudio(dir, 'long.flac', { format: 'flac', seconds: 31, seed: 401 });
    await flacClaiming(long, 3 * 3600 + 60, 44_100);
    const whole = await makeAudio(dir, 'whole.flac', { format: 'flac', seconds: 40, seed: 402, noise: true });
    const big = Buffer.concat([readFileSync(long), Buffer.alloc(WORKER_MAX_BYTES)]);
    const cases: [string, string | Buffer, string, CatalogFailure][] = [
      [
        'corrupt',
        Buffer.from(Array.from({ length: 40_000 }, (_, i) => (i * 31) % 256)),
        'corrupt.flac',
        CatalogFailure.CorruptFile,
      ],
      [
        'truncated',
        await truncated(whole, 0.4, path.join(dir, 'cut.flac')),
        'cut.flac',
        CatalogFailure.TruncatedFile,
      ],
      ['wrong extension', mp3, 'x.wav', CatalogFailure.ExtensionMismatch],
      [
        'too short',
        await makeAudio(dir, 'short.wav', { format: 'wav', seconds: 8, seed: 403 }),
        'short.wav',
        CatalogFailure.TooShort,
      ],
      ['too long', long, 'long.flac', CatalogFailure.TooLong],
      ['too large', big, 'big.flac', CatalogFailure.FileTooLarge],
    ];
    const runs = await Promise.all(
      cases.map(async ([what, file, name, failure]) => ({
        what,
        failure,
        ...(await submit(submission(await upload(file, name)))),
      })),
    );
    // Zero bytes cannot pass the API (it refuses an empty body); one left in staging by anything else is refused too.
    const emptyUpload = await call(creator, 'POST', '/v1/uploads', {
      filename: 'empty.flac',
      contentType: 'audio/flac',
      size: 10,
    });
    const emptyId = emptyUpload.json().uploadId as string;
    expect(
      (
        await call(creator, 'PUT', `/v1/uploads/${emptyId}`, Buffer.alloc(0), { 'content-length': '0' })
      ).json(),
    ).toMatchObject({
      status: 422,
      failure: CatalogFailure.EmptyFile,
    });
    await s.minio.putObject(
      bucketName('staging', s.cfg.minio.bucketPrefix),
      uploadKey(emptyId),
      Buffer.alloc(0),
    );
    runs.push({
      what: 'zero-length',
      failure: CatalogFailure.EmptyFile,
      ...(await submit(submission(emptyId))),
    });

    for (const r of runs) {
      const t = await until(r.trackId, ended);
      expect({ what: r.what, status: t.status, failure: t.ingestion?.failure }).toEqual({
        what: r.what,
        status: 'rejected',
        failure: r.failure,
      });
      expect(t.ingestion?.reason.length).toBeGreaterThan(20);
      expect(t.ingestion?.problemType).toMatch(/^urn:cadenza:problem:/);
      // A rejection is a business outcome: the run completes with it, it does not fail.
      const handle = workers.client.workflow.getHandle(r.workflowId);
      expect(await handle.result()).toMatchObject({ status: 'rejected', failure: r.failure });
      expect((await handle.describe()).status.name).toBe('COMPLETED');
    }
    expect(await catalogSnapshot(s)).toEqual(before);

    // The API refuses what it can see at once: an unknown extension and a declared size over the limit (its
    // schema says both), a body over its declared size.
    expect(
      (
        await call(creator, 'POST', '/v1/uploads', {
          filename: 'song.exe',
          contentType: 'audio/flac',
          size: 10,
        })
      ).statusCode,
    ).toBe(400);
    expect(
      (
        await call(creator, 'POST', '/v1/uploads', {
          filename: 'huge.flac',
          contentType: 'audio/flac',
          size: 3 * 1024 ** 3,
        })
      ).statusCode,
    ).toBe(400);
    const small = (
      await call(creator, 'POST', '/v1/uploads', { filename: 's.flac', contentType: 'audio/flac', size: 100 })
    ).json().uploadId;
    const over = await call(creator, 'PUT', `/v1/uploads/${small}`, Buffer.alloc(101), {
      'content-length': '101',
    });
    expect(over.json()).toMatchObject({ status: 413, failure: CatalogFailure.FileTooLarge });
  }, 240_000);

  it("cancels mid-transcode on the creator's request: ffmpeg stops, nothing is left behind", async () => {
    const before = await catalogSnapshot(s);
    // 15 minutes of MP3 at 32 kbps: small to upload, a long transcode.
    const file = await makeAudio(dir, 'long-cancel.mp3', {
      format: 'mp3',
      seconds: 900,
      seed: 500,
      noise: true,
      kbps: 32,
    });
    {
      const { trackId } = await submit(submission(await upload(file, 'long-cancel.mp3')));
      const transcoding = await until(
        trackId,
        (t) => t.ingestion?.step === 'transcode' && typeof t.ingestion.percent === 'number',
      );
      expect(transcoding.ingestion?.percent).toBeGreaterThanOrEqual(0);
      expect((await call(creator, 'POST', `/v1/tracks/${trackId}/cancel`)).statusCode).toBe(202);
      expect(await until(trackId, (t) => t.ingestion?.status === 'canceled')).toMatchObject({
        status: 'canceled',
        ingestion: { reason: 'Cancelled before publication.' },
      });
      expect(await catalogSnapshot(s)).toEqual(before);
      expect((await call(creator, 'POST', `/v1/tracks/${trackId}/cancel`)).statusCode).toBe(409);
    }
  }, 180_000);

  it('takes back promoted objects when the catalog write loses a race after promotion (saga)', async () => {
    const before = await catalogSnapshot(s);
    const file = await makeAudio(dir, 'race.mp3', {
      format: 'mp3',
      seconds: 240,
      seed: 600,
      noise: true,
      kbps: 64,
    });
    const body = submission(await upload(file, 'race.mp3'));
    const { trackId } = await submit(body);
    await until(trackId, (t) => t.ingestion?.step === 'transcode');
    // Another recording takes the ISRC while this one transcodes (as a concurrent ingestion would).
    const winner = await s.pool.oneFirst(sql.type(z.object({ track_id: z.string() }))`
      WITH al AS (
        INSERT INTO albums (artist_id, title, upc, release_date) VALUES (${artistId}, 'Winner', ${upc()}, '2024-01-01') RETURNING album_id
      )
      INSERT INTO tracks (album_id, artist_id, title, isrc, duration_ms, checksum_sha256, status, release_date)
      SELECT album_id, ${artistId}, 'Winner', ${body.isrc}, 60000, ${'f'.repeat(64)}, 'available', '2024-01-01' FROM al
      RETURNING track_id::text`);
    const done = await until(trackId, ended);
    expect(done).toMatchObject({
      status: 'rejected',
      ingestion: { failure: CatalogFailure.IsrcInUse, step: 'catalog' },
    });
    const after = await catalogSnapshot(s);
    const winnerAlbum = await s.pool.oneFirst(
      sql.type(
        z.object({ a: z.string() }),
      )`SELECT album_id::text AS a FROM tracks WHERE track_id = ${winner}`,
    );
    expect(after).toEqual({
      ...before,
      tracks: [...before.tracks, winner].sort(),
      albums: [...before.albums, winnerAlbum].sort(),
    });
    // The run went as far as promotion before it was refused: the compensation removed what it had promoted.
    const history = await workers.client.workflow.getHandle(`track-ingestion-${trackId}`).fetchHistory();
    const scheduled = (history.events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
      .filter(Boolean);
    expect(scheduled).toEqual(
      expect.arrayContaining(['promoteTrack', 'writeCatalog', 'removePromotedObjects', 'discardStaging']),
    );
  }, 180_000);
});
