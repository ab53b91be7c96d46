import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { sql, type DatabasePool } from 'slonik';
import { bucketName } from '../../lib/clients/minio';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { createMinio } from '../../lib/clients/minio';
import { createCopyPool, createPostgresPool } from '../../lib/clients/postgres';
import type { Config } from '../../lib/config';
import { migrateClickHouse } from '../../sql/migrate/clickhouse';
import { migratePostgres } from '../../sql/migrate/postgres';
import { isrcFor, upcFor } from '../../scripts/seed/codes';
import { scratchDatabases, scratchSearchAndObjects } from '../../stack/scratch';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import type { RoyaltiesDeps } from '../../activities/royalties';
import { TASK_QUEUE, settlementWorkflowId } from '../../workflows/royalties/contract';
import { workflowBundle, workflowSinks } from './env';

/**
 * Scratch stores for royalties tests: migrated PostgreSQL + ClickHouse databases and buckets of their own,
 * the activities' dependencies on them, and small writers for catalog rows, rates and ticks.
 */
export interface RoyaltiesStores {
  config: Config;
  deps: RoyaltiesDeps;
  pool: DatabasePool;
  clickhouse: ClickHouseClient;
  drop(): Promise<void>;
}

export async function royaltiesStores(base: Config): Promise<RoyaltiesStores> {
  const db = await scratchDatabases(base);
  const objects = await scratchSearchAndObjects(db.config);
  const config = objects.config;
  await migratePostgres(config.postgres);
  await migrateClickHouse(config.clickhouse);
  const pool = await createPostgresPool(config.postgres, 6);
  const copyPool = createCopyPool(config.postgres, 4);
  const clickhouse = createClickHouse(config.clickhouse, config.clickhouse.database, 600_000);
  const deps: RoyaltiesDeps = {
    pool,
    copyPool,
    clickhouse,
    minio: createMinio(config.minio),
    bucket: bucketName('royalties', config.minio.bucketPrefix),
  };
  return {
    config,
    deps,
    pool,
    clickhouse,
    drop: async () => {
      await Promise.allSettled([pool.end(), copyPool.end(), clickhouse.close()]);
      await objects.drop();
      await db.drop();
    },
  };
}

let catalogSeq = 0;

/** An artist with one album and `tracks` tracks; returns the IDs. */
export async function addArtist(
  pool: DatabasePool,
  tracks: number,
): Promise<{ artistId: string; trackIds: string[] }> {
  const n = ++catalogSeq;
  const artistId = await pool.oneFirst(
    sql.unsafe`INSERT INTO artists (name, country) VALUES (${`Artist ${n}`}, 'SE') RETURNING artist_id::text`,
  );
  const albumId = await pool.oneFirst(sql.unsafe`
    INSERT INTO albums (artist_id, title, upc, release_date)
    VALUES (${artistId}, ${`Album ${n}`}, ${upcFor(100_000 + n)}, '2024-01-01') RETURNING album_id::text`);
  const trackIds: string[] = [];
  for (let t = 1; t <= tracks; t++) {
    trackIds.push(
      await pool.oneFirst(sql.unsafe`
        INSERT INTO tracks (album_id, artist_id, title, isrc, duration_ms, checksum_sha256, release_date, status)
        VALUES (${albumId}, ${artistId}, ${`Track ${n}.${t}`}, ${isrcFor('SE', 9000 + n, 2024, t)}, 180000,
                ${createHash('sha256').update(`royalties-test:${n}:${t}`).digest('hex')}, '2024-01-01', 'available')
        RETURNING track_id::text`),
    );
  }
  return { artistId, trackIds };
}

export interface Rate {
  artistId: string;
  country: string;
  rate: string;
  currency: string;
  effectiveFrom?: string;
  effectiveTo?: string | null;
}

/** Publishes a rate version holding `rates` (version numbers from 1 up). */
export async function publishRates(
  pool: DatabasePool,
  version: number,
  rates: readonly Rate[],
): Promise<void> {
  await pool.query(
    sql.unsafe`INSERT INTO royalty_rate_versions (rate_version, note) VALUES (${version}, 'test')`,
  );
  for (const r of rates) {
    await pool.query(sql.unsafe`
      INSERT INTO royalty_rates (artist_id, country, rate_per_play, currency, rate_version, effective_from, effective_to)
      VALUES (${r.artistId}, ${r.country}, ${r.rate}::numeric, ${r.currency}, ${version}, ${r.effectiveFrom ?? '2020-01-01'}::date,
              ${r.effectiveTo ?? null}::date)`);
  }
  await pool.query(
    sql.unsafe`UPDATE royalty_rate_versions SET published_at = now() WHERE rate_version = ${version}`,
  );
}

/** A policy version like the platform's, with the given overrides. */
export async function addPolicy(
  pool: DatabasePool,
  version: number,
  p: { minTrailingStreams?: number; botRule?: 'none' | 'short-play-bursts'; botMinShortPlays?: number } = {},
): Promise<void> {
  await pool.query(sql.unsafe`
    INSERT INTO royalty_policies (policy_version, min_play_seconds, min_trailing_streams, trailing_months, bot_rule,
      bot_short_play_seconds, bot_window_seconds, bot_min_short_plays, rounding, note)
    VALUES (${version}, 30, ${p.minTrailingStreams ?? 1000}, 12, ${p.botRule ?? 'short-play-bursts'}, 15, 600,
            ${p.botMinShortPlays ?? 10}, 'largest-remainder', 'test')`);
}

export interface TestTick {
  eventId: string;
  playId: string;
  userId: string;
  trackId: string;
  country: string;
  positionMs: number;
  /** ISO instant the listener's client stamped. */
  eventTime: string;
  /** ISO instant ClickHouse received it. */
  ingestedAt: string;
}

const chTime = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;

/** Inserts ticks with explicit ingestion times (a re-delivery is the same tick again, later). */
export async function insertTicks(clickhouse: ClickHouseClient, ticks: readonly TestTick[]): Promise<void> {
  if (!ticks.length) return;
  const tsv = ticks
    .map((t) =>
      [
        t.eventId,
        t.playId,
        t.userId,
        t.trackId,
        t.country,
        'dev-test',
        t.positionMs,
        chTime(t.eventTime),
        chTime(t.ingestedAt),
      ].join('\t'),
    )
    .join('\n');
  await clickhouse.insert({
    table: 'play_ticks',
    values: Readable.from([Buffer.from(`${tsv}\n`)], { objectMode: false }),
    format: 'TabSeparated',
    columns: [
      'event_id',
      'play_id',
      'user_id',
      'track_id',
      'country',
      'device_id',
      'position_ms',
      'event_time',
      'ingested_at',
    ],
  });
}

/** A statement's files (summary.json, artists/<id>.csv) and the SHA-256 of its bytes, read from the bucket. */
export async function readStatement(
  minio: RoyaltiesDeps['minio'],
  bucket: string,
  key: string,
): Promise<{ sha256: string; files: Map<string, string> }> {
  const chunks: Buffer[] = [];
  for await (const c of await minio.getObject(bucket, key)) chunks.push(c as Buffer);
  const bytes = Buffer.concat(chunks);
  return { sha256: createHash('sha256').update(bytes).digest('hex'), files: await untar(bytes) };
}

export async function untar(bytes: Buffer): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const parts: Buffer[] = [];
      stream.on('data', (d: unknown) => parts.push(d as Buffer));
      stream.on('end', () => {
        files.set(header.name, Buffer.concat(parts).toString('utf8'));
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(bytes);
  await done;
  return files;
}

/**
 * A worker on the royalties queue of the test namespace, its activities on the given stores, and a client;
 * `poll: false` gives the client alone (a worker process of the test's own does the work).
 */
export async function royaltiesWorker(cfg: Config, deps: RoyaltiesDeps, opts: { poll?: boolean } = {}) {
  const connection = await NativeConnection.connect({ address: cfg.temporal.address });
  const worker =
    opts.poll === false
      ? undefined
      : await Worker.create({
          connection,
          namespace: cfg.temporal.namespace,
          taskQueue: TASK_QUEUE,
          workflowBundle: await workflowBundle(),
          sinks: workflowSinks(),
          activities: createActivities({ royalties: deps }),
        });
  const running = worker?.run();
  const clientConnection = await Connection.connect({ address: cfg.temporal.address });
  const client = new Client({ connection: clientConnection, namespace: cfg.temporal.namespace });
  return {
    client,
    /**
     * Removes a month's runs left by an earlier test run on the shared server (terminated, then deleted),
     * so the month's business-keyed workflow IDs can be started afresh.
     */
    clearMonth: async (month: string, reruns = 5) => {
      for (let n = 0; n <= reruns; n++) {
        const workflowId = settlementWorkflowId(month, n);
        const handle = client.workflow.getHandle(workflowId);
        const seen = await handle.describe().catch(() => null);
        if (!seen) continue;
        await handle.terminate('test starts afresh').catch(() => undefined);
        await client.workflowService.deleteWorkflowExecution({
          namespace: cfg.temporal.namespace,
          workflowExecution: { workflowId },
        });
        for (let i = 0; i < 100 && (await handle.describe().catch(() => null)); i++)
          await new Promise((r) => setTimeout(r, 100));
      }
    },
    stop: async () => {
      worker?.shutdown();
      await running;
      await connection.close();
      await clientConnection.close();
    },
  };
}
