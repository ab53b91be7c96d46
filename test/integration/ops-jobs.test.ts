import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, defineSearchAttributeKey } from '@temporalio/common';
import { sql } from 'slonik';
import { z } from 'zod';
import { ch } from '../../lib/clickhouse-sql';
import { chCount, chRows } from '../../lib/clients/clickhouse';
import { bucketName } from '../../lib/clients/minio';
import { indexAlias } from '../../lib/clients/opensearch';
import { Registry } from 'prom-client';
import { readOpsState, registerOpsMetrics } from '../../workers/ops-metrics';
import {
  OPS_WORKFLOWS,
  SCHEDULED_WORKFLOWS,
  SCHEDULE_IDS,
  type LaunchResult,
  OpsFailure,
  OpsJob,
  SEARCH,
  TASK_QUEUE,
  minuteKey,
  opsRunId,
  type BackupResult,
  type DimensionRefreshResult,
  type PartitionMaintenanceResult,
  type RecommendationsResult,
  type RestoreDrillResult,
} from '../../workflows/ops/contract';
import type { Tick } from '../../scripts/seed/generate';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';
import { opsWorld, type OpsWorld } from '../helpers/ops';
import { readBackupManifest } from '../../activities/ops/backups';
import { restorePostgres } from '../../activities/ops/backups/postgres';
import { createPostgresPool } from '../../lib/clients/postgres';
import { applySchedules } from '../../scripts/schedules';
import { SCHEDULES } from '../../workflows/schedules';

/** Temporal sets it on runs a schedule starts; a test sets it to play a second firing of the same minute. */
const SCHEDULED_AT = defineSearchAttributeKey('TemporalScheduledStartTime', 'DATETIME');

/**
 * Each scheduled job's workflow on a seeded system of its own (real PostgreSQL, ClickHouse, OpenSearch,
 * MinIO and Temporal): what the dimension refresh copies and removes, what partition maintenance makes and
 * drops, and a backup whose restore drill passes — then fails on deliberately damaged copies of it.
 */
const Id = z.object({ id: z.string() });
const N = z.object({ n: chCount });
const Status = z.object({ status: z.string() });

describe('ops jobs against the real stores', () => {
  let w: OpsWorld;
  const tag = randomUUID().slice(0, 8);
  const run = <R>(workflowType: string, workflowId: string, args: unknown[] = []) =>
    w.client.workflow.execute(workflowType, { taskQueue: TASK_QUEUE, workflowId, args }) as Promise<R>;

  beforeAll(async () => {
    w = await opsWorld({ seed: 11, plays: 1200 });
  }, 180_000);
  afterAll(async () => {
    await w?.drop();
  });

  describe('dimension refresh', () => {
    const refresh = (n: number) =>
      run<DimensionRefreshResult>(OPS_WORKFLOWS.dimensionRefresh, `dimension-refresh-${tag}-${n}`, [
        { overlapSeconds: 0 },
      ]);
    const dimUsers = async () =>
      new Set(
        (await chRows(w.clickhouse, ch`SELECT toString(user_id) AS id FROM dim_users FINAL`, Id)).map(
          (r) => r.id,
        ),
      );

    it('copies everything first, then only what changed, and removes erased users', async () => {
      const first = await refresh(1);
      expect(first.since).toBeNull();
      expect(first).toMatchObject({
        tracks: w.data.tracks.length,
        campaigns: w.data.campaigns.length,
        users: w.data.users.length,
        erasedUsersRemoved: 0,
      });

      const [track] = w.data.tracks;
      const [erased, kept] = w.data.users;
      await w.pool.query(
        sql.unsafe`UPDATE tracks SET duration_ms = 123456 WHERE track_id = ${track!.track_id}`,
      );
      await w.pool.query(sql.unsafe`UPDATE users SET erased_at = now() WHERE user_id = ${erased!.user_id}`);
      const added = await w.pool.oneFirst(sql.type(z.object({ user_id: z.string() }))`
        INSERT INTO users (email, display_name, country) VALUES (${`ops-${tag}@example.test`}, 'Ops Test', 'FR')
        RETURNING user_id::text`);
      expect(await dimUsers()).toContain(erased!.user_id);

      const second = await refresh(2);
      expect(second.since).toBe(first.until);
      expect(second).toMatchObject({ tracks: 1, campaigns: 0, users: 1, erasedUsersRemoved: 1 });
      const users = await dimUsers();
      expect(users.has(erased!.user_id)).toBe(false);
      expect(users.has(added)).toBe(true);
      expect(users.has(kept!.user_id)).toBe(true);
      const [duration] = await chRows(
        w.clickhouse,
        ch`SELECT toUInt64(duration_ms) AS n FROM dim_tracks FINAL WHERE track_id = toUUID(${track!.track_id})`,
        N,
      );
      expect(duration?.n).toBe(123456);

      const third = await refresh(3);
      expect(third).toMatchObject({ tracks: 0, campaigns: 0, users: 0, erasedUsersRemoved: 0 });
      // Each run is recorded under its business key, and its outcome is searchable.
      const recorded = await w.pool.anyFirst(sql.type(Status)`
        SELECT status FROM ops_job_runs WHERE run_key LIKE ${`dimension-refresh-${tag}-%`}`);
      expect(recorded).toEqual(['succeeded', 'succeeded', 'succeeded']);
      const described = await w.client.workflow.getHandle(`dimension-refresh-${tag}-3`).describe();
      expect(described.typedSearchAttributes.get(SEARCH.status)).toBe('succeeded');
    }, 120_000);
  });

  describe('from its schedule', () => {
    it('runs the job a triggered schedule starts under its business key, with its status searchable', async () => {
      const declared = SCHEDULES.filter((d) => d.scheduleId === SCHEDULE_IDS.dimensionRefresh).map((d) => ({
        ...d,
        scheduleId: `t-${tag}-${d.scheduleId}`,
      }));
      await applySchedules(w.client, w.cfg, declared, { createPaused: true });
      const handle = w.client.schedule.getHandle(declared[0]!.scheduleId);
      try {
        await handle.trigger();
        let launcher: string | undefined;
        for (let i = 0; i < 100 && !launcher; i++) {
          for await (const run of w.client.workflow.list({
            query: `TemporalScheduledById = '${declared[0]!.scheduleId}'`,
          }))
            launcher = run.workflowId;
          if (!launcher) await new Promise((r) => setTimeout(r, 200));
        }
        const launched = (await w.client.workflow
          .getHandle(launcher as string)
          .result()) as LaunchResult<DimensionRefreshResult>;
        expect(launched.started).toBe(true);
        expect(launched.workflowId).toMatch(/^dimension-refresh-\d{4}-\d{2}-\d{2}T\d{4}Z$/);
        const child = await w.client.workflow.getHandle(launched.workflowId).describe();
        expect(child.type).toBe(OPS_WORKFLOWS.dimensionRefresh);
        expect(child.status.name).toBe('COMPLETED');
        expect(child.typedSearchAttributes.get(SEARCH.status)).toBe('succeeded');
        // A second firing of the same minute does not run the job again.
        const again = await w.client.workflow.execute(SCHEDULED_WORKFLOWS.dimensionRefresh, {
          taskQueue: TASK_QUEUE,
          workflowId: `${launcher}-again`,
          args: declared[0]!.args(w.cfg),
          typedSearchAttributes: [
            {
              key: SCHEDULED_AT,
              value: new Date(
                launched.workflowId.replace(/^dimension-refresh-(.{10})T(\d\d)(\d\d)Z$/, '$1T$2:$3:00Z'),
              ),
            },
          ],
        });
        expect(again).toEqual({ workflowId: launched.workflowId, started: false });
      } finally {
        await handle.delete();
      }
    }, 120_000);

    it('counts the failed runs of a schedule: a drill with no backup to restore fails its run', async () => {
      const declared = SCHEDULES.filter((d) => d.scheduleId === SCHEDULE_IDS.restoreDrill).map((d) => ({
        ...d,
        scheduleId: `t-${tag}-${d.scheduleId}`,
      }));
      const id = declared[0]!.scheduleId;
      await applySchedules(w.client, w.cfg, declared, { createPaused: true });
      const registry = new Registry();
      registerOpsMetrics(registry, {
        pool: w.pool,
        temporal: { connection: w.client.connection, namespace: w.cfg.temporal.namespace },
        scheduleIds: [id],
        scheduleCacheMs: 500,
      });
      try {
        expect(await registry.metrics()).toMatch(
          new RegExp(`^cadenza_schedule_failed_runs\\{schedule_id="${id}"\\} 0$`, 'm'),
        );
        await w.client.schedule.getHandle(id).trigger();
        // No backup exists yet in this world: the drill fails, and so does the launcher its schedule started.
        let failed = '';
        for (let i = 0; i < 150 && !failed.includes(' 1'); i++) {
          await new Promise((r) => setTimeout(r, 400));
          failed =
            (await registry.metrics())
              .split('\n')
              .find((l) => l.startsWith('cadenza_schedule_failed_runs')) ?? '';
        }
        expect(failed).toBe(`cadenza_schedule_failed_runs{schedule_id="${id}"} 1`);
        const drills = await w.pool.anyFirst(sql.type(Status)`
          SELECT status FROM restore_drills WHERE drill_id LIKE 'restore-drill-%' AND backup_id IS NULL`);
        expect(drills).toContain('failed');
      } finally {
        await w.client.schedule.getHandle(id).delete();
      }
    }, 120_000);
  });

  describe('recommendations', () => {
    const input = { windowDays: 60, perUser: 5, neighbors: 4, shards: 3 };

    it('writes each listener the co-listened tracks they have not played, as computed independently', async () => {
      const result = await run<RecommendationsResult>(
        OPS_WORKFLOWS.recommendations,
        `recommendations-${tag}`,
        [input],
      );
      // Erased listeners (the dimension refresh above erased one) get no list.
      const erased = new Set(
        await w.pool.anyFirst(
          sql.type(
            z.object({ id: z.string() }),
          )`SELECT user_id::text AS id FROM users WHERE erased_at IS NOT NULL`,
        ),
      );
      const expected = new Map([...coListening(w.ticks, input)].filter(([u]) => !erased.has(u)));
      expect(result.listeners).toBe(expected.size);
      expect(result.tracksWithNeighbors).toBeGreaterThan(0);
      const stored = await w.pool.any(sql.type(z.object({ user_id: z.string(), recs: z.unknown() }))`
        SELECT user_id::text, recs FROM user_recs`);
      expect(new Map(stored.map((r) => [r.user_id, r.recs]))).toEqual(expected);
      // The neighbour tables of other runs are gone; this run's stays for inspection until the next.
      const runs = await chRows(w.clickhouse, ch`SELECT DISTINCT run_id AS id FROM track_neighbors`, Id);
      expect(runs.map((r) => r.id)).toEqual([`recommendations-${tag}`]);

      const apiCfg = withTempIssuer(w.cfg);
      const app = await testApp(apiCfg, { pool: w.pool });
      try {
        const [someone, list] = [...expected.entries()][0]!;
        const other = w.data.users.find((u) => u.user_id !== someone && !erased.has(u.user_id))!.user_id;
        const token = await tokenFor(apiCfg, someone, ['listener']);
        const get = (id: string, t = token) =>
          app.inject({ method: 'GET', url: `/v1/users/${id}/recommendations`, headers: bearer(t) });
        const own = await get(someone);
        expect(own.statusCode).toBe(200);
        expect(
          own.json().tracks.map((t: { trackId: string; score: number }) => [t.trackId, t.score]),
        ).toEqual(list.map((r) => [r.trackId, r.score]));
        expect(own.json().tracks[0]).toEqual(
          expect.objectContaining({ title: expect.any(String), artist: expect.any(String) }),
        );
        expect((await get(other)).statusCode).toBe(404);
        const operator = await tokenFor(apiCfg, 'ops-person', ['operator']);
        expect((await get(other, operator)).statusCode).toBe(200);
        expect((await get(randomUUID(), operator)).statusCode).toBe(404);
        // An erased listener has no recommendations to show, to anyone.
        expect((await get([...erased][0] as string, operator)).statusCode).toBe(404);
      } finally {
        await app.close();
      }
    }, 120_000);
  });

  describe('partition maintenance', () => {
    const Children = z.object({ name: z.string() });
    const partitions = (table: string) =>
      w.pool.anyFirst(sql.type(Children)`
        SELECT partition_tablename AS name FROM partman.show_partitions(${table}, 'DESC')`);

    it('makes the missing future partitions, drops what is past retention, and a second run changes nothing', async () => {
      // Lose the two furthest partitions of one table, and give two tables a partition from nine months ago.
      const [last, beforeLast] = await partitions('public.ad_impressions');
      for (const p of [last, beforeLast])
        await w.pool.query(sql.unsafe`DROP TABLE ${sql.identifier(['public', p as string])}`);
      for (const t of ['public.session_logs', 'public.payment_transactions'])
        await w.pool.query(sql.unsafe`
          SELECT partman.create_partition_time(${t}, ARRAY[now() - interval '9 months'])`);
      const oldSessions = (await partitions('public.session_logs')).at(-1);

      const first = await run<PartitionMaintenanceResult>(
        OPS_WORKFLOWS.partitionMaintenance,
        `partition-maintenance-${tag}-1`,
      );
      const byTable = Object.fromEntries(first.tables.map((t) => [t.table, t]));
      // The lost ones are back (and any month that came due meanwhile).
      expect(byTable['public.ad_impressions']?.partitionsCreated).toBeGreaterThanOrEqual(2);
      expect(await partitions('public.ad_impressions')).toEqual(expect.arrayContaining([last, beforeLast]));
      // session_logs keeps six months: the partition of nine months ago goes; payments are kept for good.
      expect(byTable['public.session_logs']?.partitionsDropped).toBe(1);
      expect(await partitions('public.session_logs')).not.toContain(oldSessions);
      expect(byTable['public.payment_transactions']?.partitionsDropped).toBe(0);
      for (const t of first.tables) expect([t.table, t.runwayDays >= 90]).toEqual([t.table, true]);

      const second = await run<PartitionMaintenanceResult>(
        OPS_WORKFLOWS.partitionMaintenance,
        `partition-maintenance-${tag}-2`,
      );
      for (const t of second.tables)
        expect([t.table, t.partitionsCreated, t.partitionsDropped]).toEqual([t.table, 0, 0]);
      const state = await readOpsState(w.pool);
      expect(state.runway.map((r) => r.parent_table).sort()).toEqual(first.tables.map((t) => t.table).sort());
      expect(Math.min(...state.runway.map((r) => r.runway_days ?? 0))).toBeGreaterThan(90);
    }, 120_000);
  });

  describe('backups and the restore drill', () => {
    const backupId = minuteKey(new Date(Date.UTC(2031, 0, 2, 3, 0)));
    const bucket = () => bucketName('backups', w.cfg.minio.bucketPrefix);
    const drill = (n: string, backup = backupId) =>
      run<RestoreDrillResult>(OPS_WORKFLOWS.restoreDrill, `restore-drill-${tag}-${n}`, [
        { drillId: `restore-drill-${tag}-${n}`, backupId: backup },
      ]);
    const drillFailure = async (n: string, backup = backupId) => {
      const err = await drill(n, backup).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const failure = (err as WorkflowFailedError).cause as ApplicationFailure;
      expect(failure.type).toBe(OpsFailure.RestoreDrillFailed);
      return { message: failure.message, drill: failure.details?.[0] as RestoreDrillResult };
    };
    let backup: BackupResult;

    beforeAll(async () => {
      // Something to back up in every store: two search documents beside the seeded databases.
      const alias = indexAlias('tracks', w.cfg.opensearch.indexPrefix);
      for (const t of w.data.tracks.slice(0, 2))
        await w.opensearch.index({
          index: alias,
          id: t.track_id,
          body: { title: t.title, play_count: 3 },
          refresh: true,
        });
      // An old backup past retention, which this backup expires.
      await w.pool.query(sql.unsafe`
        INSERT INTO backups (backup_id, status, started_at, completed_at, bucket, manifest_key)
        VALUES ('2020-01-01T0300Z', 'completed', '2020-01-01T03:00Z', '2020-01-01T03:10Z', ${bucket()},
                '2020-01-01T0300Z/manifest.json')`);
      await w.minio.putObject(bucket(), '2020-01-01T0300Z/manifest.json', Buffer.from('{}'));
      backup = await run<BackupResult>(OPS_WORKFLOWS.backup, opsRunId(OpsJob.backup, new Date()), [
        { backupId, retentionDays: 14, keepAtLeast: 1 },
      ]);
    }, 240_000);

    it('writes every store and a manifest into the bucket, and expires backups past retention', async () => {
      expect(backup.backupId).toBe(backupId);
      expect(backup.expired).toEqual(['2020-01-01T0300Z']);
      const keys: string[] = [];
      for await (const o of w.minio.listObjectsV2(bucket(), '', true) as AsyncIterable<{ name: string }>)
        keys.push(o.name);
      expect(keys.filter((k) => k.startsWith('2020-'))).toEqual([]);
      expect(keys).toEqual(
        expect.arrayContaining([
          `${backupId}/manifest.json`,
          `${backupId}/postgres/${w.cfg.postgres.database}.dump`,
          `${backupId}/clickhouse/play_ticks.native`,
          `${backupId}/clickhouse/plays_mv.sql`,
          expect.stringMatching(new RegExp(`^${backupId}/opensearch/.*tracks-v[0-9]+\\.ndjson\\.gz$`)),
        ]),
      );
      expect(keys.filter((k) => k.startsWith(`${backupId}/`))).toHaveLength(backup.objects);
      const row = await w.pool.one(sql.type(z.object({ status: z.string(), bytes: z.number() }))`
        SELECT status, bytes FROM backups WHERE backup_id = ${backupId}`);
      expect(row).toEqual({ status: 'completed', bytes: backup.bytes });
    });

    it('passes its restore drill: every table, index and checksum as the source had them', async () => {
      const registry = new Registry();
      registerOpsMetrics(registry, { pool: w.pool });
      expect(await registry.metrics()).toMatch(
        new RegExp(`^cadenza_backup_last_completed_timestamp_seconds\\{backup_id="${backupId}"\\} \\d+`, 'm'),
      );
      const result = await drill('pass');
      expect(result).toMatchObject({ status: 'passed', backupId, failures: [] });
      const tables = await w.pool.oneFirst(
        sql.type(N)`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`,
      );
      // Every PostgreSQL table (partitions as their parent), ClickHouse table and search index was checked.
      expect(result.checks).toBeGreaterThan(tables / 2);
      const state = await readOpsState(w.pool);
      expect(state.drill?.passed).toBe(true);
      await new Promise((r) => setTimeout(r, 5100)); // past the gauges' few-second cache
      expect(await registry.metrics()).toMatch(
        new RegExp(
          `^cadenza_restore_drill_last_passed\\{drill_id="restore-drill-${tag}-pass",backup_id="${backupId}"\\} 1$`,
          'm',
        ),
      );
    }, 240_000);

    it('fails loudly on a dump whose bytes were damaged, and records why', async () => {
      const key = `${backupId}/postgres/${w.cfg.postgres.database}.dump`;
      const original = await readAll(w, bucket(), key);
      const damaged = Buffer.from(original);
      const at = Math.floor(damaged.length / 2);
      damaged[at] = (damaged[at] as number) ^ 0xff;
      await w.minio.putObject(bucket(), key, damaged);
      try {
        const { message, drill: d } = await drillFailure('bytes');
        expect(message).toMatch(/restore drill .* failed/);
        expect(d.failures).toEqual(
          expect.arrayContaining([
            expect.objectContaining({
              store: 'postgres',
              object: key,
              reason: expect.stringMatching(/damaged/),
            }),
          ]),
        );
        const recorded = await w.pool.oneFirst(
          sql.type(
            Status,
          )`SELECT status FROM restore_drills WHERE drill_id = ${`restore-drill-${tag}-bytes`}`,
        );
        expect(recorded).toBe('failed');
        expect((await readOpsState(w.pool)).drill?.passed).toBe(false);
      } finally {
        await w.minio.putObject(bucket(), key, original);
      }
    }, 240_000);

    it('fails on a backup that lost rows, even when its manifest was rewritten to match the damaged files', async () => {
      // A table export cut short, with a manifest (and catalogue row) recomputed over the short file: only
      // restoring and comparing with the source's recorded counts can find this.
      const manifestKey = `${backupId}/manifest.json`;
      const manifest = JSON.parse((await readAll(w, bucket(), manifestKey)).toString('utf8'));
      const table = manifest.clickhouse.tables.find((t: { name: string }) => t.name === 'dim_users');
      const short = await w.clickhouse.exec({
        query: 'SELECT * FROM dim_users LIMIT 10 FORMAT Native',
      });
      const chunks: Buffer[] = [];
      for await (const c of short.stream) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      const originalData = await readAll(w, bucket(), table.data.key);
      await w.minio.putObject(bucket(), table.data.key, body);
      const { createHash } = await import('node:crypto');
      table.data.bytes = body.length;
      table.data.sha256 = createHash('sha256').update(body).digest('hex');
      const rewritten = Buffer.from(JSON.stringify(manifest));
      const originalManifest = await readAll(w, bucket(), manifestKey);
      await w.minio.putObject(bucket(), manifestKey, rewritten);
      const originalSha = await w.pool.oneFirst(sql.type(z.object({ manifest_sha256: z.string() }))`
        SELECT manifest_sha256 FROM backups WHERE backup_id = ${backupId}`);
      await w.pool
        .query(sql.unsafe`UPDATE backups SET manifest_sha256 = ${createHash('sha256').update(rewritten).digest('hex')}
        WHERE backup_id = ${backupId}`);
      try {
        const { drill: d } = await drillFailure('rows');
        expect(d.failures).toEqual([
          {
            store: 'clickhouse',
            object: 'dim_users',
            reason: `10 rows restored, the source had ${table.rows}`,
          },
        ]);
        expect(table.rows).toBeGreaterThan(10);
      } finally {
        await w.minio.putObject(bucket(), table.data.key, originalData);
        await w.minio.putObject(bucket(), manifestKey, originalManifest);
        await w.pool.query(
          sql.unsafe`UPDATE backups SET manifest_sha256 = ${originalSha} WHERE backup_id = ${backupId}`,
        );
      }
    }, 240_000);

    it('restores next to the live data for an operator, and never over a database that is there', async () => {
      const manifest = await readBackupManifest({ pool: w.pool, minio: w.minio, config: w.cfg }, backupId);
      const target = `${w.cfg.postgres.database}_restored_${tag}`;
      const deps = { pool: w.pool, minio: w.minio, config: w.cfg };
      try {
        expect(
          await restorePostgres(deps, bucket(), manifest.postgres, { target, keep: true }),
        ).toMatchObject({
          failures: [],
        });
        const restored = await createPostgresPool({ ...w.cfg.postgres, database: target }, 1);
        const users = await restored.oneFirst(sql.type(N)`SELECT count(*)::int AS n FROM users`);
        await restored.end();
        expect(users).toBe(manifest.postgres.tables['public.users']?.rows);
        await expect(
          restorePostgres(deps, bucket(), manifest.postgres, { target, keep: true }),
        ).rejects.toThrow(/exists already/);
      } finally {
        await w.pool.query(sql.unsafe`DROP DATABASE IF EXISTS ${sql.identifier([target])} WITH (FORCE)`);
      }
    }, 120_000);

    it('refuses a backup that does not exist or an ID that names no minute, as a person must fix it', async () => {
      for (const [n, id] of [
        ['missing', '2029-06-01T0300Z'],
        ['bad-id', 'yesterday'],
      ]) {
        const err = await drill(n as string, id).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowFailedError);
        expect(applicationFailure(err)?.type).toBe(OpsFailure.BackupNotFound);
      }
    }, 120_000);
  });
});

/** The ApplicationFailure behind a failed run (through the activity failure that carried it). */
function applicationFailure(err: unknown): ApplicationFailure | undefined {
  for (let e = err; e; e = (e as { cause?: unknown }).cause) if (e instanceof ApplicationFailure) return e;
  return undefined;
}

/** The recommender's rules, in plain TypeScript over the generated ticks (no ClickHouse involved). */
function coListening(
  ticks: Tick[],
  opts: { perUser: number; neighbors: number },
): Map<string, { trackId: string; score: number }[]> {
  const plays = new Map<string, { user: string; track: string; ids: Set<string> }>();
  for (const t of ticks) {
    const p = plays.get(t.play_id) ?? { user: t.user_id, track: t.track_id, ids: new Set() };
    p.ids.add(t.event_id);
    plays.set(t.play_id, p);
  }
  const byUser = new Map<string, Map<string, number>>();
  for (const p of plays.values()) {
    if (p.ids.size < 6) continue;
    const tracks = byUser.get(p.user) ?? new Map<string, number>();
    tracks.set(p.track, (tracks.get(p.track) ?? 0) + 1);
    byUser.set(p.user, tracks);
  }
  const text = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const top = new Map(
    [...byUser].map(([u, tracks]) => [
      u,
      [...tracks]
        .sort((a, b) => b[1] - a[1] || text(a[0], b[0]))
        .slice(0, 30)
        .map(([t]) => t),
    ]),
  );
  const pairs = new Map<string, Map<string, number>>();
  for (const tracks of top.values())
    for (const a of tracks)
      for (const b of tracks) {
        if (a === b) continue;
        const m = pairs.get(a) ?? new Map<string, number>();
        m.set(b, (m.get(b) ?? 0) + 1);
        pairs.set(a, m);
      }
  const near = new Map(
    [...pairs].map(([a, m]) => [
      a,
      [...m]
        .filter(([, n]) => n >= 2)
        .sort((x, y) => y[1] - x[1] || text(x[0], y[0]))
        .slice(0, opts.neighbors),
    ]),
  );
  const out = new Map<string, { trackId: string; score: number }[]>();
  for (const [u, tracks] of top) {
    const played = byUser.get(u) as Map<string, number>;
    const scores = new Map<string, number>();
    for (const a of tracks)
      for (const [b, n] of near.get(a) ?? []) if (!played.has(b)) scores.set(b, (scores.get(b) ?? 0) + n);
    const list = [...scores]
      .sort((x, y) => y[1] - x[1] || text(x[0], y[0]))
      .slice(0, opts.perUser)
      .map(([trackId, score]) => ({ trackId, score }));
    if (list.length) out.set(u, list);
  }
  return out;
}

async function readAll(w: OpsWorld, bucket: string, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await w.minio.getObject(bucket, key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
