import type { ClickHouseClient } from '@clickhouse/client';
import type { Client as OpenSearch } from '@opensearch-project/opensearch';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { Client as MinioClient } from 'minio';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { createActivities } from '../../activities';
import type { CatalogDeps } from '../../activities/catalog';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { createMinio, createMinioSigner } from '../../lib/clients/minio';
import { createOpenSearch } from '../../lib/clients/opensearch';
import { createPostgresPool } from '../../lib/clients/postgres';
import type { Config } from '../../lib/config';
import { migrateClickHouse } from '../../sql/migrate/clickhouse';
import { bucketName, type Bucket } from '../../lib/clients/minio';
import { indexAlias } from '../../lib/clients/opensearch';
import { migratePostgres } from '../../sql/migrate/postgres';
import { scratchDatabases, scratchSearchAndObjects } from '../../stack/scratch';
import { MEDIA_TASK_QUEUE, TASK_QUEUE } from '../../workflows/catalog/contract';
import { testConfig, workflowBundle, workflowSinks } from './env';

/**
 * The catalog's stores for a test file: scratch PostgreSQL and ClickHouse databases (migrated), scratch
 * search indices and buckets, real clients, and helpers to list what exists (for "nothing left behind").
 */
export interface CatalogStores {
  cfg: Config;
  pool: DatabasePool;
  minio: MinioClient;
  signer: MinioClient;
  opensearch: OpenSearch;
  clickhouse: ClickHouseClient;
  deps: CatalogDeps;
  drop(): Promise<void>;
}

export async function catalogStores(
  base: Config = testConfig(),
  overrides: Partial<CatalogDeps> = {},
): Promise<CatalogStores> {
  const db = await scratchDatabases(base);
  await migratePostgres(db.config.postgres);
  await migrateClickHouse(db.config.clickhouse);
  const objects = await scratchSearchAndObjects(db.config);
  const cfg = objects.config;
  const pool = await createPostgresPool(cfg.postgres, 6);
  const minio = createMinio(cfg.minio);
  const opensearch = createOpenSearch(cfg.opensearch);
  const clickhouse = createClickHouse(cfg.clickhouse);
  const deps: CatalogDeps = {
    pool,
    minio,
    opensearch,
    clickhouse,
    bucketPrefix: cfg.minio.bucketPrefix,
    indexPrefix: cfg.opensearch.indexPrefix,
    maxUploadBytes: cfg.catalog.maxUploadBytes,
    ...overrides,
  };
  return {
    cfg,
    pool,
    minio,
    signer: createMinioSigner(cfg.minio),
    opensearch,
    clickhouse,
    deps,
    drop: async () => {
      await Promise.allSettled([pool.end(), opensearch.close(), clickhouse.close()]);
      await objects.drop();
      await db.drop();
    },
  };
}

/** Workers for both catalog queues in this process, over the given stores. */
export async function catalogWorkers(
  cfg: Config,
  deps: CatalogDeps,
  queues: string[] = [TASK_QUEUE, MEDIA_TASK_QUEUE],
): Promise<{ client: Client; stop(): Promise<void> }> {
  // Refused uploads are expected in these tests: the SDK's own log says only what is wrong.
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // Installed already in this process.
  }
  const connection = await Connection.connect({ address: cfg.temporal.address });
  const client = new Client({ connection, namespace: cfg.temporal.namespace });
  const native = await NativeConnection.connect({ address: cfg.temporal.address });
  const activities = createActivities({ catalog: deps });
  const bundle = await workflowBundle();
  const real = await Promise.all(
    queues.map((taskQueue) =>
      Worker.create({
        connection: native,
        namespace: cfg.temporal.namespace,
        taskQueue,
        workflowBundle: bundle,
        sinks: workflowSinks(),
        activities,
        maxConcurrentActivityTaskExecutions: taskQueue === MEDIA_TASK_QUEUE ? 2 : 20,
        maxHeartbeatThrottleInterval: '2s',
      }),
    ),
  );
  const running = real.map((w) => w.run());
  return {
    client,
    stop: async () => {
      for (const w of real) w.shutdown();
      await Promise.allSettled(running);
      await native.close();
      await connection.close();
    },
  };
}

/** Every object key in a bucket (under an optional prefix). */
export async function objectKeys(
  s: Pick<CatalogStores, 'minio' | 'cfg'>,
  bucket: Bucket,
  prefix = '',
): Promise<string[]> {
  const keys: string[] = [];
  const name = bucketName(bucket, s.cfg.minio.bucketPrefix);
  for await (const o of s.minio.listObjectsV2(name, prefix, true) as AsyncIterable<{ name?: string }>) {
    if (o.name) keys.push(o.name);
  }
  return keys.sort();
}

/** Every document ID in a search index (after a refresh). */
export async function documentIds(
  s: Pick<CatalogStores, 'opensearch' | 'cfg'>,
  index: 'tracks' | 'albums' | 'artists',
): Promise<string[]> {
  const alias = indexAlias(index, s.cfg.opensearch.indexPrefix);
  await s.opensearch.indices.refresh({ index: alias });
  const { body } = await s.opensearch.search({ index: alias, body: { size: 10_000, _source: false } });
  return (body.hits.hits as { _id: string }[]).map((h) => h._id).sort();
}

/** What the catalog holds, store by store: to compare before and after a run that must leave nothing. */
export async function catalogSnapshot(s: CatalogStores) {
  const ids = (q: ReturnType<typeof sql.unsafe>) => s.pool.anyFirst(q) as Promise<readonly string[]>;
  return {
    staging: await objectKeys(s, 'staging'),
    audio: await objectKeys(s, 'audio'),
    covers: await objectKeys(s, 'covers'),
    tracks: await ids(sql.unsafe`SELECT track_id::text FROM tracks ORDER BY 1`),
    albums: await ids(sql.unsafe`SELECT album_id::text FROM albums ORDER BY 1`),
    genres: await ids(sql.unsafe`SELECT track_id::text || genre_id FROM track_genres ORDER BY 1`),
    trackDocs: await documentIds(s, 'tracks'),
    albumDocs: await documentIds(s, 'albums'),
    dimTracks: (
      await (
        await s.clickhouse.query({
          query: 'SELECT toString(track_id) AS id FROM dim_tracks FINAL ORDER BY id',
          format: 'JSONEachRow',
        })
      ).json<{ id: string }>()
    ).map((r) => r.id),
  };
}

/** A new artist (the creator's token subject is the artist ID). */
export async function newArtist(pool: DatabasePool, name = 'Test Artist'): Promise<string> {
  return pool.oneFirst(sql.type(z.object({ artist_id: z.string() }))`
    INSERT INTO artists (name, country) VALUES (${name}, 'DE') RETURNING artist_id::text`);
}

/** A new listener with a tier and parental controls. */
export async function newListener(
  pool: DatabasePool,
  opts: { tier?: 'free' | 'premium'; parental?: boolean; country?: string } = {},
): Promise<string> {
  return pool.oneFirst(sql.type(z.object({ user_id: z.string() }))`
    INSERT INTO users (email, display_name, country, tier, parental_controls)
    VALUES (${`l-${Math.random().toString(36).slice(2)}@example.test`}, 'Listener', ${opts.country ?? 'DE'},
            ${opts.tier ?? 'free'}, ${opts.parental ?? false})
    RETURNING user_id::text`);
}
