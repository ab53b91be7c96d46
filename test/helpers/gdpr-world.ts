import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client as OpenSearch } from '@opensearch-project/opensearch';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import type { Client as Minio } from 'minio';
import pino from 'pino';
import { Registry } from 'prom-client';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { createActivities } from '../../activities';
import type { ComplianceDeps } from '../../activities/compliance';
import { exportKey } from '../../activities/compliance/objects';
import { PlanCatalog } from '../../domain/billing/plans';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { createMinio } from '../../lib/clients/minio';
import { createOpenSearch } from '../../lib/clients/opensearch';
import { createPostgresPool } from '../../lib/clients/postgres';
import type { Config } from '../../lib/config';
import { ListFollower } from '../../lib/erasure-lists';
import { bucketName } from '../../lib/clients/minio';
import { indexAlias } from '../../lib/clients/opensearch';
import { PlayTickProducer } from '../../api/lib/play-tick-producer';
import type { PlayTick } from '../../domain/play-ticks/ticks';
import { SandboxProvider } from '../../lib/clients/payments-sandbox';
import { ensureSchema } from '../../sandbox/payments/schema';
import { buildSandbox } from '../../sandbox/payments/server';
import { scratchDatabases, scratchSearchAndObjects } from '../../stack/scratch';
import { PlayTickSink } from '../../workers/sink/sink';
import { SuppressionList } from '../../workers/sink/suppressions';
import { testApp, withTempIssuer } from './api';
import { testConfig, workflowBundle, workflowSinks } from './env';
import { scratchTickPipeline, type TickPipeline } from './tick-pipeline';

/**
 * A whole Cadenza for GDPR tests, on the shared servers but in stores of its own: scratch PostgreSQL and
 * ClickHouse, indices and buckets under a prefix, play-tick topics, an in-process payments sandbox with
 * its own database, a sink and an API that follow the erasure lists, and Temporal workers (compliance,
 * billing) in the test namespace. `person()` makes a listener with data in every store.
 */
export interface World {
  cfg: Config;
  pipe: TickPipeline;
  pool: DatabasePool;
  clickhouse: ClickHouseClient;
  opensearch: OpenSearch;
  minio: Minio;
  client: Client;
  app: FastifyInstance;
  producer: PlayTickProducer;
  provider: SandboxProvider;
  /** The in-process payments sandbox, for a worker process of the test's own. */
  sandboxUrl: string;
  complianceDeps: ComplianceDeps;
  /** Starts the in-process compliance worker (tests of a worker process leave it off). */
  startComplianceWorker(over?: Partial<ComplianceDeps>): Promise<Worker>;
  stopComplianceWorker(): Promise<void>;
  close(): Promise<void>;
}

export const PLAN = 'gdpr-monthly';

export async function gdprWorld(opts: { complianceWorker?: boolean; sink?: boolean } = {}): Promise<World> {
  const pipe = await scratchTickPipeline('gdpr', 3);
  const objects = await scratchSearchAndObjects(pipe.config);
  const cfg = withTempIssuer({
    ...pipe.config,
    opensearch: objects.config.opensearch,
    minio: objects.config.minio,
  });
  cfg.kafka = { ...cfg.kafka, topics: pipe.topics };
  const pool = await createPostgresPool(cfg.postgres, 6);
  const clickhouse = createClickHouse(cfg.clickhouse);
  const opensearch = createOpenSearch(cfg.opensearch);
  const minio = createMinio(cfg.minio);

  // The payments sandbox, in process, with a database of its own (it plays an outside provider).
  const sandboxDb = await scratchDatabases(testConfig(), { clickhouse: false });
  const sandboxPool = await createPostgresPool(sandboxDb.config.postgres, 2);
  await ensureSchema(sandboxPool);
  const sandbox = buildSandbox({
    pool: sandboxPool,
    settings: { latencyMs: 0, failureRate: 0, hangMs: 5000, keyLifetimeMs: 0 },
  });
  await sandbox.listen({ host: '127.0.0.1', port: 0 });
  const sandboxUrl = `http://127.0.0.1:${(sandbox.server.address() as AddressInfo).port}`;
  const provider = new SandboxProvider({ url: sandboxUrl, timeoutMs: 5000 });

  const connection = await Connection.connect({ address: cfg.temporal.address });
  const client = new Client({ connection, namespace: cfg.temporal.namespace });
  const plans = new PlanCatalog([
    {
      plan: PLAN,
      priceMinor: 999,
      currency: 'EUR',
      period: { ms: 3_600_000 },
      trialMs: 0,
      graceMs: 3_600_000,
      dunningMs: [600_000],
    },
  ]);
  const billing = { pool, provider, plans };
  const complianceDeps: ComplianceDeps = {
    pool,
    clickhouse,
    opensearch,
    minio,
    kafka: pipe.kafka,
    temporal: client,
    provider,
    indexPrefix: cfg.opensearch.indexPrefix,
    bucketPrefix: cfg.minio.bucketPrefix,
    topics: pipe.topics,
    codeVersion: 'test',
  };
  const native = await NativeConnection.connect({ address: cfg.temporal.address });
  const bundle = await workflowBundle();
  const workerOf = async (taskQueue: string, compliance?: ComplianceDeps) =>
    Worker.create({
      connection: native,
      namespace: cfg.temporal.namespace,
      taskQueue,
      workflowBundle: bundle,
      sinks: workflowSinks(),
      activities: createActivities({ billing, compliance }),
    });
  const running: { worker: Worker; done: Promise<void> }[] = [];
  const billingWorker = await workerOf('billing');
  running.push({ worker: billingWorker, done: billingWorker.run() });
  let compliance: { worker: Worker; done: Promise<void> } | undefined;

  // The sink and the API follow the erasure lists and report what they hold, like the real processes.
  const suppressions = new SuppressionList(pool, 200);
  await suppressions.start();
  const sink =
    opts.sink === false
      ? undefined
      : new PlayTickSink(
          pipe.kafka,
          clickhouse,
          suppressions,
          pino({ level: 'silent' }),
          {
            groupId: `sink-gdpr-${pipe.id}`,
            minBatchBytes: 1,
            maxWaitMs: 100,
            partitionsConcurrently: 3,
            threads: 0,
            insertsInFlight: 2,
            insertIntervalMs: 0,
            topics: pipe.topics,
          },
          new Registry(),
        );
  await sink?.start();
  const denied = new ListFollower(pool, { list: 'denied_subjects', role: 'api', pollMs: 200 });
  await denied.start();
  const producer = new PlayTickProducer(pipe.kafka, pipe.topics.ticks, 10_000);
  const app = await testApp(cfg, {
    temporal: client,
    publisher: producer,
    denied,
    pool,
    clickhouse,
    minio,
    payments: { provider, plans },
  });

  const world: World = {
    cfg,
    pipe,
    pool,
    clickhouse,
    opensearch,
    minio,
    client,
    app,
    producer,
    provider,
    sandboxUrl,
    complianceDeps,
    async startComplianceWorker(over = {}) {
      const worker = await workerOf('compliance', { ...complianceDeps, ...over });
      compliance = { worker, done: worker.run() };
      return worker;
    },
    async stopComplianceWorker() {
      if (!compliance) return;
      compliance.worker.shutdown();
      await compliance.done;
      compliance = undefined;
    },
    async close() {
      await world.stopComplianceWorker();
      for (const r of running) r.worker.shutdown();
      await Promise.allSettled(running.map((r) => r.done));
      await sink?.stop();
      await Promise.allSettled([suppressions.stop(), denied.stop(), producer.close(), app.close()]);
      await Promise.allSettled([native.close(), connection.close(), sandbox.close()]);
      await Promise.allSettled([clickhouse.close(), opensearch.close(), pool.end(), sandboxPool.end()]);
      await Promise.allSettled([pipe.drop(), objects.drop(), sandboxDb.drop()]);
    },
  };
  if (opts.complianceWorker !== false) await world.startComplianceWorker();
  return world;
}

const Id = z.object({ id: z.string() });

export interface Person {
  userId: string;
  email: string;
  name: string;
  playlistIds: string[];
  trackIds: string[];
}

/** A catalog of a few tracks (the playlists need them). */
export async function catalog(pool: DatabasePool, n = 3): Promise<string[]> {
  const artist = await pool.oneFirst(sql.type(Id)`
    INSERT INTO artists (name, country) VALUES ('GDPR Test Artist', 'SE') RETURNING artist_id::text AS id`);
  const album = await pool.oneFirst(sql.type(Id)`
    INSERT INTO albums (artist_id, title, upc, release_date)
    VALUES (${artist}, 'GDPR Album', ${upc()}, '2024-01-01') RETURNING album_id::text AS id`);
  const tracks: string[] = [];
  for (let k = 0; k < n; k++) {
    tracks.push(
      await pool.oneFirst(sql.type(Id)`
        INSERT INTO tracks (album_id, artist_id, title, isrc, duration_ms, checksum_sha256, release_date, status)
        VALUES (${album}, ${artist}, ${`Track ${k}`}, ${`SEG${String(Date.now() % 100).padStart(2, '0')}${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`.slice(0, 12)},
          200000, ${randomUUID().replace(/-/g, '') + randomUUID().replace(/-/g, '')}, '2024-01-01', 'available')
        RETURNING track_id::text AS id`),
    );
  }
  return tracks;
}

/** A valid UPC-A (GS1 check digit). */
function upc(): string {
  const body = Array.from({ length: 11 }, () => Math.floor(Math.random() * 10)).join('');
  const sum = [...body].reduce((s, d, i) => s + Number(d) * (i % 2 === 0 ? 3 : 1), 0);
  return body + String((10 - (sum % 10)) % 10);
}

/** Ticks of one play: n ticks 5 s apart, a few minutes ago. */
export function playTicks(userId: string, trackId: string, n: number, device = 'ios-17'): PlayTick[] {
  const play = randomUUID();
  const start = Date.now() - 3_600_000;
  return Array.from({ length: n }, (_, k) => ({
    event_id: randomUUID(),
    play_id: play,
    user_id: userId,
    track_id: trackId,
    country: 'SE',
    device_id: device,
    position_ms: (k + 1) * 5000,
    event_time: new Date(start + (k + 1) * 5000).toISOString(),
  }));
}

/**
 * A listener with data in PostgreSQL (sessions, follows both ways, playlists with tracks, a track in
 * someone else's playlist, recommendations, ad impressions), OpenSearch (their playlists) and ClickHouse
 * (dimensions). Ticks, subscriptions and exports go through the API by the test.
 */
export async function person(w: World, tracks: string[], label: string): Promise<Person> {
  const email = `${label}.${randomUUID().slice(0, 8)}@listener.example`;
  const name = `${label[0]?.toUpperCase()}${label.slice(1)} Testperson-${randomUUID().slice(0, 4)}`;
  const userId = await w.pool.oneFirst(sql.type(Id)`
    INSERT INTO users (email, display_name, country, birth_year) VALUES (${email}, ${name}, 'SE', 1990)
    RETURNING user_id::text AS id`);
  const { pool } = w;
  for (let k = 0; k < 3; k++)
    await pool.query(sql.unsafe`
      INSERT INTO session_logs (started_at, user_id, ip_country, device_id)
      VALUES (now() - make_interval(hours => ${k + 1}), ${userId}, 'SE', 'ios-17')`);
  const playlistIds: string[] = [];
  for (let k = 0; k < 2; k++) {
    const id = await pool.oneFirst(sql.type(Id)`
      INSERT INTO playlists (owner_id, title, collaborative) VALUES (${userId}, ${`${name}'s mix ${k}`}, ${k === 1})
      RETURNING playlist_id::text AS id`);
    playlistIds.push(id);
    for (const [pos, t] of tracks.entries())
      await pool.query(sql.unsafe`
        INSERT INTO playlist_tracks (playlist_id, position, track_id, added_by) VALUES (${id}, ${pos}, ${t}, ${userId})`);
    await w.opensearch.index({
      index: indexAlias('playlists', w.cfg.opensearch.indexPrefix),
      id,
      refresh: true,
      body: {
        playlist_id: id,
        title: `${name}'s mix ${k}`,
        owner_id: userId,
        collaborative: k === 1,
        public: true,
        track_count: tracks.length,
        play_count: 0,
        created_at: new Date().toISOString(),
      },
    });
  }
  await pool.query(sql.unsafe`
    INSERT INTO user_recs (user_id, recs) VALUES (${userId}, ${sql.jsonb(tracks.map((t) => ({ track_id: t })))})`);
  for (let k = 0; k < 4; k++)
    await pool.query(sql.unsafe`
      INSERT INTO ad_impressions (shown_at, campaign_id, user_id, country)
      VALUES (now() - make_interval(mins => ${k}), ${randomUUID()}, ${userId}, 'SE')`);
  await w.clickhouse.insert({
    table: 'dim_users',
    values: [{ user_id: userId, signup_date: '2024-01-01', country: 'SE', tier: 'free', version: 1 }],
    format: 'JSONEachRow',
  });
  return { userId, email, name, playlistIds, trackIds: tracks };
}

/** `a` and `b` follow each other. */
export async function befriend(w: World, a: Person, b: Person): Promise<void> {
  await w.pool.query(sql.unsafe`
    INSERT INTO user_follows (follower_id, followee_id) VALUES (${a.userId}, ${b.userId}), (${b.userId}, ${a.userId})`);
}

/** `adder` puts a track into `owner`'s collaborative playlist. */
export async function addToPlaylist(w: World, owner: Person, adder: Person): Promise<void> {
  await w.pool.query(sql.unsafe`
    INSERT INTO playlist_tracks (playlist_id, position, track_id, added_by)
    VALUES (${owner.playlistIds[1] as string}, 100, ${owner.trackIds[0] as string}, ${adder.userId})`);
}

/** An object kept for the user outside exports (e.g. an avatar), under their prefix. */
export async function userObject(w: World, userId: string): Promise<void> {
  const body = Buffer.from('avatar');
  await w.minio.putObject(
    bucketName('covers', w.cfg.minio.bucketPrefix),
    `users/${userId}/avatar.png`,
    body,
    body.length,
  );
}

export { exportKey };

export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
