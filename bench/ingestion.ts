import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { createActivities } from '../activities';
import { runFfmpeg } from '../activities/catalog/ffmpeg';
import { buildApp } from '../api/app';
import { createVerifier } from '../api/auth/verifier';
import { mintDevToken } from '../api/auth/dev-issuer';
import { PlanCatalog } from '../domain/billing/plans';
import { uploadKey } from '../domain/catalog/keys';
import { createClickHouse } from '../lib/clients/clickhouse';
import { bucketName, createMinio, createMinioSigner } from '../lib/clients/minio';
import { indexAlias, createOpenSearch } from '../lib/clients/opensearch';
import { createPostgresPool } from '../lib/clients/postgres';
import { config, type Config } from '../lib/config';
import { upcFor } from '../scripts/seed/codes';
import { runSeed } from '../scripts/seed/run';
import { migrateClickHouse } from '../sql/migrate/clickhouse';
import { migratePostgres } from '../sql/migrate/postgres';
import { scratchDatabases, scratchSearchAndObjects } from '../stack/scratch';
import {
  MEDIA_TASK_QUEUE,
  TASK_QUEUE,
  TRACK_CHANGE_WORKFLOW,
  TRACK_INGESTION_WORKFLOW,
  trackChangeWorkflowId,
  trackIngestionWorkflowId,
  type IngestionResult,
} from '../workflows/catalog/contract';
import { summary } from './report';

/**
 * npm run bench:ingestion -- [--tracks 8] [--sequential 3] [--seconds 180] [--changes 200] [--searches 2000]
 *   [--scale medium] [--media-slots 2]
 * Track ingestion on real, generated 3-minute tracks (44.1 kHz stereo FLAC), through Temporal and in-process
 * workers (as many ffmpeg slots as cores), over scratch stores:
 *  - orchestration overhead: `sequential` ingestions one at a time; for each, the workflow's wall time minus
 *    the CPU time of its ffmpeg processes (target ≤ 10 % of the ffmpeg time), and minus their wall time;
 *  - throughput: `tracks` ingestions at once, tracks per minute;
 *  - catalog write → searchable: for every ingestion (the row's commit time to the first search that finds
 *    it) and for `changes` title edits (commit to the first search that finds the new title); target p99 ≤ 2 s;
 *  - search latency through the API (HTTP) on the `scale` catalogue (the seed's, every document indexed):
 *    `searches` queries (titles, typos, prefixes, artist names), one at a time and eight at a time; target
 *    p99 ≤ 50 ms.
 */
const { values: args } = parseArgs({
  options: {
    tracks: { type: 'string', default: '8' },
    sequential: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '180' },
    changes: { type: 'string', default: '200' },
    searches: { type: 'string', default: '2000' },
    scale: { type: 'string', default: 'medium' },
    'media-slots': { type: 'string', default: '2' },
  },
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};
const log = (msg: string) => process.stdout.write(`${msg}\n`);

interface Stores {
  cfg: Config;
  pool: DatabasePool;
  drop(): Promise<void>;
}

async function scratch(base: Config): Promise<Stores> {
  const db = await scratchDatabases(base);
  await migratePostgres(db.config.postgres);
  await migrateClickHouse(db.config.clickhouse);
  const objects = await scratchSearchAndObjects(db.config);
  const pool = await createPostgresPool(objects.config.postgres, 8);
  return {
    cfg: objects.config,
    pool,
    drop: async () => {
      await pool.end();
      await objects.drop();
      await db.drop();
    },
  };
}

/** Three minutes of 44.1 kHz stereo FLAC: a tone of its own over pink noise (lossy encoders have work). */
async function makeTrack(dir: string, n: number, seconds: number): Promise<string> {
  const file = path.join(dir, `track-${n}.flac`);
  const run = await runFfmpeg([
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `sine=frequency=${180 + n * 13}:sample_rate=44100:duration=${seconds}`,
    '-f', 'lavfi', '-i', `anoisesrc=color=pink:sample_rate=44100:duration=${seconds}:amplitude=0.1:seed=${n + 1}`,
    '-filter_complex', '[0][1]amix=inputs=2:duration=shortest,volume=8dB', '-ac', '2', '-c:a', 'flac', file,
  ]); // prettier-ignore
  if (run.code !== 0) throw new Error(run.stderr);
  return file;
}

async function main(): Promise<void> {
  const base = config();
  const tracks = Number(args.tracks);
  const sequential = Number(args.sequential);
  const seconds = Number(args.seconds);
  const mediaSlots = Number(args['media-slots']);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const s = await scratch({
    ...base,
    temporal: { ...base.temporal, namespace: process.env.CADENZA_TEST_NAMESPACE ?? 'cadenza-test' },
  });
  const { cfg, pool } = s;
  const minio = createMinio(cfg.minio);
  const opensearch = createOpenSearch(cfg.opensearch);
  const clickhouse = createClickHouse(cfg.clickhouse);
  const dir = await mkdtemp(path.join(tmpdir(), 'cadenza-bench-ingestion-'));
  const connection = await Connection.connect({ address: cfg.temporal.address });
  const client = new Client({ connection, namespace: cfg.temporal.namespace });
  const native = await NativeConnection.connect({ address: cfg.temporal.address });
  const workers: Worker[] = [];
  try {
    const activities = createActivities({
      catalog: {
        pool,
        minio,
        opensearch,
        clickhouse,
        bucketPrefix: cfg.minio.bucketPrefix,
        indexPrefix: cfg.opensearch.indexPrefix,
        maxUploadBytes: cfg.catalog.maxUploadBytes,
      },
    });
    // Both catalog queues, in the test namespace (CADENZA_TEST_NAMESPACE), as the worker process runs them.
    for (const [taskQueue, slots] of [
      [TASK_QUEUE, 20],
      [MEDIA_TASK_QUEUE, mediaSlots],
    ] as const) {
      workers.push(
        await Worker.create({
          connection: native,
          namespace: cfg.temporal.namespace,
          taskQueue,
          workflowsPath: require.resolve('../workflows'),
          activities,
          maxConcurrentActivityTaskExecutions: slots,
          maxHeartbeatThrottleInterval: '2s',
        }),
      );
    }
    const running = workers.map((w) => w.run());
    void running;

    const artistId = await pool.oneFirst(sql.type(z.object({ artist_id: z.string() }))`
      INSERT INTO artists (name, country) VALUES ('Bench Ensemble', 'DE') RETURNING artist_id::text`);
    log(`generating ${tracks + sequential} tracks of ${seconds} s…`);
    const files = await Promise.all(
      Array.from({ length: tracks + sequential }, (_, n) => makeTrack(dir, n, seconds)),
    );

    async function stage(file: string, n: number): Promise<string> {
      const uploadId = randomUUID();
      const body = readFileSync(file);
      await pool.query(sql.unsafe`
        INSERT INTO uploads (upload_id, artist_id, kind, filename, extension, content_type, declared_bytes, object_key, expires_at)
        VALUES (${uploadId}, ${artistId}, 'audio', ${`bench-${n}.flac`}, 'flac', 'audio/flac', ${body.length}, ${uploadKey(uploadId)}, now() + interval '2 days')`);
      await minio.putObject(bucketName('staging', cfg.minio.bucketPrefix), uploadKey(uploadId), body);
      return uploadId;
    }
    const start = (uploadId: string, n: number) =>
      client.workflow.start(TRACK_INGESTION_WORKFLOW, {
        taskQueue: TASK_QUEUE,
        workflowId: trackIngestionWorkflowId(uploadId),
        args: [
          {
            trackId: uploadId,
            uploadId,
            artistId,
            submission: {
              title: `Benchmark Song ${n} ${uploadId.slice(0, 8)}`,
              album: { title: `Bench Album ${n}`, upc: upcFor(600_000 + n), releaseDate: '2025-01-01' },
              isrc: `DEB0125${String(10_000 + n)}`,
              explicit: false,
              genres: ['electronic'],
            },
          },
        ],
      });

    // Catalog write → searchable: poll the index for every track not yet found, every 20 ms.
    const searchable = new Map<string, number>();
    const watched = new Set<string>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        if (watched.size) {
          const { body } = await opensearch.search({
            index: indexAlias('tracks', cfg.opensearch.indexPrefix),
            body: { size: 1000, _source: false, query: { ids: { values: [...watched] } } },
          });
          const now = Date.now();
          for (const h of body.hits.hits as { _id: string }[]) {
            searchable.set(h._id, now);
            watched.delete(h._id);
          }
        }
        await sleep(20);
      }
    })();
    const writtenAt = async (ids: string[]) =>
      new Map(
        (
          await pool.any(sql.type(z.object({ id: z.string(), t: z.number() }))`
            SELECT track_id::text AS id, (extract(epoch FROM created_at) * 1000)::float8 AS t
            FROM tracks WHERE track_id = ANY(${sql.array(ids, 'uuid')})`)
        ).map((r) => [r.id, r.t]),
      );

    // 1. One at a time: orchestration overhead.
    const overhead: { wallMs: number; cpuMs: number; ffWallMs: number }[] = [];
    for (let n = 0; n < sequential; n++) {
      const uploadId = await stage(files[n]!, n);
      watched.add(uploadId);
      const h = await start(uploadId, n);
      const result = (await h.result()) as IngestionResult;
      if (result.status !== 'available') throw new Error(`ingestion ${n}: ${JSON.stringify(result)}`);
      const d = await h.describe();
      const wallMs = d.closeTime!.getTime() - d.startTime.getTime();
      overhead.push({ wallMs, cpuMs: result.ffmpegCpuMs, ffWallMs: result.ffmpegWallMs });
      log(
        `sequential ${n}: wall ${wallMs} ms, ffmpeg cpu ${result.ffmpegCpuMs} ms, ffmpeg wall ${result.ffmpegWallMs} ms`,
      );
    }

    // 2. All at once: throughput.
    const uploads = await Promise.all(files.slice(sequential).map((f, i) => stage(f, sequential + i)));
    uploads.forEach((u) => watched.add(u));
    const t0 = Date.now();
    const handles = await Promise.all(uploads.map((u, i) => start(u, sequential + i)));
    const results = (await Promise.all(handles.map((h) => h.result()))) as IngestionResult[];
    const elapsed = Date.now() - t0;
    if (results.some((r) => r.status !== 'available')) throw new Error('an ingestion was not published');
    const tracksPerMinute = (tracks / elapsed) * 60_000;
    log(`concurrent: ${tracks} tracks in ${(elapsed / 1000).toFixed(1)} s`);
    while (watched.size) await sleep(50);
    const allIds = [...searchable.keys()];
    const written = await writtenAt(allIds);
    const ingestLag = allIds.map((id) => searchable.get(id)! - written.get(id)!);

    // 3. Title edits: commit → the new title is found by search.
    const changeLag: number[] = [];
    const changes = Number(args.changes);
    for (let i = 0; i < changes; i++) {
      const trackId = allIds[i % allIds.length]!;
      const title = `Edited Title ${i} ${randomUUID().slice(0, 6)}`;
      const h = await client.workflow.start(TRACK_CHANGE_WORKFLOW, {
        taskQueue: TASK_QUEUE,
        workflowId: trackChangeWorkflowId(trackId, `bench-${i}`),
        args: [{ trackId, change: { kind: 'edit', edit: { title } } }],
      });
      let committed: number | undefined;
      for (;;) {
        const [row] = await pool.any(sql.type(z.object({ title: z.string(), t: z.number() }))`
          SELECT title, (extract(epoch FROM updated_at) * 1000)::float8 AS t FROM tracks WHERE track_id = ${trackId}`);
        if (row?.title === title) committed ??= row.t;
        if (committed) {
          const { body } = await opensearch.search({
            index: indexAlias('tracks', cfg.opensearch.indexPrefix),
            body: {
              size: 1,
              _source: false,
              query: { bool: { filter: [{ ids: { values: [trackId] } }, { match_phrase: { title } }] } },
            },
          });
          if (body.hits.hits.length) {
            changeLag.push(Date.now() - committed);
            break;
          }
        }
        await sleep(10);
      }
      await h.result();
    }
    polling = false;
    await poller;

    // 4. Search latency on the scale's catalogue, through the API.
    log(`seeding the ${args.scale} catalogue (PostgreSQL and search documents, no plays)…`);
    const catalogue = await scratch(cfg);
    let searchStats: Record<string, number> = {};
    try {
      const seeded = await runSeed(catalogue.cfg, {
        scale: args.scale as 'medium',
        seed: 7,
        now: new Date(),
        plays: 0,
        via: 'clickhouse',
        catalog: { audioTracks: 0 },
      });
      const data = seeded.data!;
      const issuerDir = await mkdtemp(path.join(tmpdir(), 'cadenza-bench-issuer-'));
      const apiCfg: Config = {
        ...catalogue.cfg,
        auth: { ...catalogue.cfg.auth, jwksUrl: undefined, devIssuerDir: issuerDir },
      };
      const searchClient = createOpenSearch(apiCfg.opensearch);
      const app = await buildApp({
        config: apiCfg,
        temporal: client,
        verify: await createVerifier(apiCfg.auth),
        pool: catalogue.pool,
        clickhouse,
        payments: { provider: undefined as never, plans: PlanCatalog.builtIn() },
        catalog: { minio, signer: createMinioSigner(apiCfg.minio), opensearch: searchClient },
        publisher: { publish: async () => undefined },
        readiness: async () => [],
        log: false,
      });
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as AddressInfo;
      const token = await mintDevToken(apiCfg.auth, {
        sub: data.users[0]!.user_id,
        scopes: ['listener'],
        ttlSeconds: 3600,
      });
      // Queries a listener types: whole titles, a word, a typo, a prefix, an artist's name.
      const typo = (w: string) => (w.length > 4 ? w.slice(0, 2) + w[3] + w[2] + w.slice(4) : w);
      const queries = Array.from({ length: Number(args.searches) }, (_, i) => {
        const t = data.tracks[(i * 7919) % data.tracks.length]!;
        const words = t.title.split(/\s+/);
        return [
          `/v1/search?q=${encodeURIComponent(t.title)}`,
          `/v1/search?q=${encodeURIComponent(words[0]!)}`,
          `/v1/search?q=${encodeURIComponent(words.map(typo).join(' '))}`,
          `/v1/search/suggest?q=${encodeURIComponent(t.title.slice(0, 4))}`,
          `/v1/search?type=artist&q=${encodeURIComponent(data.artists[i % data.artists.length]!.name)}`,
        ][i % 5]!;
      });
      const timeAll = async (concurrency: number) => {
        const times: number[] = [];
        let next = 0;
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next < queries.length) {
              const q = queries[next++]!;
              const t = performance.now();
              const res = await fetch(`http://127.0.0.1:${port}${q}`, {
                headers: { authorization: `Bearer ${token}` },
              });
              await res.arrayBuffer();
              if (res.status !== 200) throw new Error(`${q}: ${res.status}`);
              times.push(performance.now() - t);
            }
          }),
        );
        return times;
      };
      await timeAll(4); // warm-up: caches, JIT, the remembered token
      const one = await timeAll(1);
      const eight = await timeAll(8);
      searchStats = {
        search_docs: data.tracks.length + data.albums.length + data.artists.length,
        search_p50_ms: pct(one, 50),
        search_p99_ms: pct(one, 99),
        search_c8_p50_ms: pct(eight, 50),
        search_c8_p99_ms: pct(eight, 99),
      };
      await app.close();
      await searchClient.close();
    } finally {
      await catalogue.drop();
    }

    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const over = overhead.map((o) => ((o.wallMs - o.cpuMs) / o.cpuMs) * 100);
    const overWall = overhead.map((o) => ((o.wallMs - o.ffWallMs) / o.ffWallMs) * 100);
    summary('ingestion', {
      track_seconds: seconds,
      media_slots: mediaSlots,
      tracks_per_min: tracksPerMinute,
      seq_wall_ms: mean(overhead.map((o) => o.wallMs)),
      seq_ffmpeg_cpu_ms: mean(overhead.map((o) => o.cpuMs)),
      overhead_vs_cpu_pct: mean(over),
      overhead_vs_ffmpeg_wall_pct: mean(overWall),
      write_to_searchable_ingest_p50_ms: pct(ingestLag, 50),
      write_to_searchable_ingest_p99_ms: pct(ingestLag, 99),
      write_to_searchable_edit_p50_ms: pct(changeLag, 50),
      write_to_searchable_edit_p99_ms: pct(changeLag, 99),
      edits: changeLag.length,
      ...searchStats,
    });
  } finally {
    for (const w of workers) w.shutdown();
    await sleep(500);
    await native.close();
    await connection.close();
    await Promise.allSettled([opensearch.close(), clickhouse.close()]);
    await rm(dir, { recursive: true, force: true });
    await s.drop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:ingestion failed: ${String((err as Error).stack ?? err)}\n`);
    process.exit(1);
  },
);
