import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Registry } from 'prom-client';
import { sql } from 'slonik';
import { createOpsActivities } from '../activities/ops';
import { SessionRecorder } from '../api/lib/session-recorder';
import type { PlayTick } from '../domain/play-ticks/ticks';
import { createClickHouse } from '../lib/clients/clickhouse';
import { createMinio } from '../lib/clients/minio';
import { NotificationClient } from '../lib/clients/notifications';
import { createOpenSearch } from '../lib/clients/opensearch';
import { createPostgresPool } from '../lib/clients/postgres';
import { config, type Config } from '../lib/config';
import { SCALES, type ScaleName } from '../scripts/seed/generate';
import { runSeed } from '../scripts/seed/run';
import { migrateClickHouse } from '../sql/migrate/clickhouse';
import { migratePostgres } from '../sql/migrate/postgres';
import { scratchDatabases, scratchSearchAndObjects } from '../stack/scratch';
import { OutboxRelay } from '../workers/outbox/relay';
import { summary } from './report';

/**
 * npm run bench:ops -- [--scale medium] [--messages 5000]
 * The ops jobs on seeded scratch stores of the running stack (activities run as Temporal would run them,
 * in a mock activity context): the dimension refresh (full, then with nothing changed), partition maintenance,
 * the backup of all three stores and its restore drill, the recommendations; the outbox relay delivering
 * `messages` to a notifications sandbox process of its own; and the session recorder's cost on the play-ticks
 * path (ns per tick, requests of 500 ticks). Seconds unless named otherwise.
 */
const root = path.join(__dirname, '..');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

async function timed<T>(what: string, f: () => Promise<T>): Promise<{ value: T; s: number }> {
  const t0 = performance.now();
  const value = await f();
  const s = (performance.now() - t0) / 1000;
  process.stdout.write(`${what.padEnd(34)} ${s.toFixed(2)} s\n`);
  return { value, s };
}

function sessionCost(): { sameDevice: number; fiftyUsers: number } {
  const recorder = new SessionRecorder(undefined as never, { windowMinutes: 15, maxPending: 10_000_000 });
  const requests = 4000;
  const batch = (users: number) =>
    Array.from({ length: 500 }, (_, i) => ({ user_id: `u-${i % users}`, device_id: 'd' }) as PlayTick);
  const measure = (ticks: PlayTick[]) => {
    for (let i = 0; i < 200; i++) recorder.noteTicks(ticks, 'SE'); // warm
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < requests; i++) recorder.noteTicks(ticks, 'SE');
    return Number(process.hrtime.bigint() - t0) / (requests * ticks.length);
  };
  return { sameDevice: measure(batch(1)), fiftyUsers: measure(batch(50)) };
}

async function relayThroughput(cfg: Config, messages: number): Promise<number> {
  const pool = await createPostgresPool(cfg.postgres, 10);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const database = `${cfg.postgres.database}_notifications`;
  const sandbox = spawn(
    path.join(root, 'node_modules', '.bin', 'tsx'),
    [path.join(root, 'sandbox', 'notifications', 'main.ts')],
    {
      env: {
        ...process.env,
        CADENZA_NOTIFICATIONS_URL: url,
        CADENZA_NOTIFICATIONS_PG_DATABASE: database,
        CADENZA_LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
      detached: true,
    },
  );
  try {
    while (!(await fetch(`${url}/healthz`).catch(() => null))?.ok) await sleep(100);
    const user = await pool.oneFirst(sql.unsafe`SELECT user_id::text FROM users LIMIT 1`);
    await pool.query(sql.unsafe`
      INSERT INTO outbox_messages (message_key, user_id, topic, payload)
      SELECT 'bench-' || ${randomUUID()} || '-' || g, ${user as string}, 'subscription.renewed', jsonb_build_object('n', g)
      FROM generate_series(1, ${messages}) g`);
    const relay = new OutboxRelay(
      pool,
      new NotificationClient({ url, timeoutMs: 5000 }),
      { ...cfg.outbox, batch: 200, concurrency: 16 },
      new Registry(),
      { info: () => undefined, warn: () => undefined },
    );
    const t0 = performance.now();
    let left = messages;
    while (left > 0) left -= await relay.relayOnce();
    return messages / ((performance.now() - t0) / 1000);
  } finally {
    process.kill(-(sandbox.pid as number), 'SIGKILL');
    await sleep(200);
    await pool.query(sql.unsafe`DROP DATABASE IF EXISTS ${sql.identifier([database])} WITH (FORCE)`);
    await pool.end();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { scale: { type: 'string', default: 'medium' }, messages: { type: 'string', default: '5000' } },
  });
  const scale = values.scale as ScaleName;
  if (!(scale in SCALES)) throw new Error(`--scale: one of ${Object.keys(SCALES).join(', ')}`);
  const base = config();
  const db = await scratchDatabases(base);
  const objects = await scratchSearchAndObjects(db.config);
  const cfg: Config = { ...db.config, opensearch: objects.config.opensearch, minio: objects.config.minio };
  const pool = await createPostgresPool(cfg.postgres, 8);
  const clickhouse = createClickHouse(cfg.clickhouse);
  const opensearch = createOpenSearch(cfg.opensearch);
  const minio = createMinio(cfg.minio, { partSize: 16 * 1024 * 1024 });
  try {
    await migratePostgres(cfg.postgres);
    await migrateClickHouse(cfg.clickhouse);
    const seeded = await runSeed(cfg, {
      scale,
      seed: 7,
      now: new Date(Date.now() - 60_000),
      via: 'clickhouse',
      progress: false,
    });
    process.stdout.write(`seeded ${scale}: ${seeded.ticks} ticks, ${seeded.postgres.rows} PostgreSQL rows\n`);
    const ops = createOpsActivities({ pool, clickhouse, opensearch, minio, config: cfg });
    const act = <A extends unknown[], R>(f: (...a: A) => Promise<R>, ...args: A): Promise<R> =>
      new MockActivityEnvironment().run(f as (...a: unknown[]) => Promise<R>, ...args) as Promise<R>;

    const full = await timed('dimension refresh (full)', () =>
      act(ops.refreshChangedDimensions, { overlapSeconds: 0 }),
    );
    const rows = full.value.tracks + full.value.campaigns + full.value.users;
    const quiet = await timed('dimension refresh (nothing new)', () =>
      act(ops.refreshChangedDimensions, { overlapSeconds: 600 }),
    );
    const partitions = await timed('partition maintenance', () => act(ops.maintainPartitions));
    const backupId = '2031-01-01T0300Z';
    await act(ops.beginBackup, { backupId });
    const pg = await timed('backup: PostgreSQL', () => act(ops.backupPostgres, { backupId }));
    const chb = await timed('backup: ClickHouse', () => act(ops.backupClickHouse, { backupId }));
    const osb = await timed('backup: OpenSearch', () => act(ops.backupOpenSearch, { backupId }));
    const done = await act(ops.completeBackup, {
      backupId,
      postgres: pg.value,
      clickhouse: chb.value,
      opensearch: osb.value,
    });
    await act(ops.beginRestoreDrill, { drillId: 'bench-drill', backupId });
    const rpg = await timed('drill: PostgreSQL', () =>
      act(ops.restorePostgresBackup, { drillId: 'bench-drill', backupId }),
    );
    const rch = await timed('drill: ClickHouse', () =>
      act(ops.restoreClickHouseBackup, { drillId: 'bench-drill', backupId }),
    );
    const ros = await timed('drill: OpenSearch', () =>
      act(ops.restoreOpenSearchBackup, { drillId: 'bench-drill', backupId }),
    );
    const failures = [...rpg.value.failures, ...rch.value.failures, ...ros.value.failures];
    if (failures.length) throw new Error(`the drill failed: ${JSON.stringify(failures)}`);
    const asOf = new Date().toISOString();
    const runId = 'recommendations-bench';
    const neighbors = await timed('recommendations: neighbours', () =>
      act(ops.computeTrackNeighbors, { runId, asOf, windowDays: 30, neighbors: 20 }),
    );
    const shards = 4;
    const recs = await timed('recommendations: listeners', async () => {
      let n = 0;
      for (let shard = 0; shard < shards; shard++)
        n += await act(ops.recommendForShard, { runId, asOf, windowDays: 30, perUser: 20, shard, shards });
      return n;
    });
    const session = sessionCost();
    process.stdout.write(
      `sessions: ${session.sameDevice.toFixed(1)} ns/tick (one device), ${session.fiftyUsers.toFixed(1)} ns/tick (50 users)\n`,
    );
    const relay = await relayThroughput(cfg, Number(values.messages));
    process.stdout.write(`outbox relay: ${relay.toFixed(0)} messages/s\n`);
    const chRows = chb.value.tables.reduce((n, t) => n + (t.rows ?? 0), 0);
    summary('ops', {
      scale,
      ticks: seeded.ticks,
      dims_rows: rows,
      dims_full_s: full.s,
      dims_rows_per_s: rows / full.s,
      dims_quiet_s: quiet.s,
      partitions_s: partitions.s,
      backup_pg_s: pg.s,
      backup_pg_mb: pg.value.object.bytes / 1e6,
      backup_ch_s: chb.s,
      backup_ch_rows: chRows,
      backup_ch_mb: chb.value.tables.reduce((n, t) => n + (t.data?.bytes ?? 0), 0) / 1e6,
      backup_os_s: osb.s,
      backup_mb: done.bytes / 1e6,
      drill_s: rpg.s + rch.s + ros.s,
      drill_checks: rpg.value.checks + rch.value.checks + ros.value.checks,
      recs_neighbors_s: neighbors.s,
      recs_tracks: neighbors.value,
      recs_listeners_s: recs.s,
      recs_listeners: recs.value,
      session_ns_per_tick: session.sameDevice,
      session_ns_per_tick_50_users: session.fiftyUsers,
      relay_messages_per_s: relay,
    });
  } finally {
    await Promise.allSettled([pool.end(), clickhouse.close(), opensearch.close()]);
    await objects.drop();
    await db.drop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
