import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { runner } from 'node-pg-migrate';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { createRoyaltiesActivities } from '../../activities/royalties';
import { allocateLargestRemainder } from '../../domain/royalties/allocation';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { createPostgresPool, postgresUri } from '../../lib/clients/postgres';
import { clickHouseMigrations, migrateClickHouse } from '../../sql/migrate/clickhouse';
import { migratePostgres, POSTGRES_MIGRATIONS } from '../../sql/migrate/postgres';
import { scratchDatabases } from '../../stack/scratch';
import { testConfig } from '../helpers/env';
import {
  addArtist,
  insertTicks,
  royaltiesStores,
  type RoyaltiesStores,
  type TestTick,
} from '../helpers/royalties';

/**
 * The stores under the settlement: the migrations applied over existing data, the guards the database
 * itself keeps (immutable approved runs, frozen pins, append-only rates and policies, four eyes), and the
 * payout SQL held to the TypeScript rounding rule by property tests.
 */
jest.setTimeout(180_000);

describe('settlement migrations over existing data', () => {
  it('PostgreSQL 0011: an approved run from before becomes an import, its rates a published version', async () => {
    const db = await scratchDatabases(testConfig(), { clickhouse: false });
    const pool = await createPostgresPool(db.config.postgres, 2);
    const dir = mkdtempSync(path.join(tmpdir(), 'cadenza-pg-'));
    try {
      cpSync(POSTGRES_MIGRATIONS, dir, { recursive: true });
      // The database as it was before 0011: every later migration left out too (they run after it below).
      for (const f of readdirSync(dir)) if (f >= '0011') rmSync(path.join(dir, f));
      await runner({
        databaseUrl: postgresUri(db.config.postgres),
        dir,
        migrationsTable: 'pgmigrations',
        direction: 'up',
        count: Infinity,
        checkOrder: true,
        log: () => undefined,
      });
      const { artistId } = await addArtist(pool, 1);
      await pool.query(sql.unsafe`
        INSERT INTO royalty_rates (artist_id, country, rate_per_play, currency, rate_version, effective_from)
        VALUES (${artistId}, 'DE', 0.004, 'EUR', 1, '2024-01-01')`);
      const runId = await pool.oneFirst(sql.unsafe`
        INSERT INTO settlement_runs (month, ingestion_cutoff, rate_version, policy_version, status, total_amount, decided_by)
        VALUES ('2026-09-01', now(), 1, 'seed', 'approved', 12.34, 'seed') RETURNING run_id::text`);
      await pool.query(sql.unsafe`
        INSERT INTO artist_payouts (run_id, artist_id, currency, plays, amount) VALUES (${runId}, ${artistId}, 'EUR', 3085, 12.34)`);

      expect((await migratePostgres(db.config.postgres))[0]).toBe('0011_royalties-pins');
      const run = await pool.one(sql.unsafe`
        SELECT origin, kind, policy_version, status, started_by FROM settlement_runs WHERE run_id = ${runId}`);
      expect(run).toEqual({
        origin: 'imported',
        kind: 'settlement',
        policy_version: null,
        status: 'approved',
        started_by: 'import',
      });
      expect(
        await pool.oneFirst(
          sql.unsafe`SELECT published_at IS NOT NULL FROM royalty_rate_versions WHERE rate_version = 1`,
        ),
      ).toBe(true);
      await expect(
        pool.query(sql.unsafe`UPDATE settlement_runs SET status = 'rejected' WHERE run_id = ${runId}`),
      ).rejects.toThrow(/approved and cannot change/);
      await expect(pool.query(sql.unsafe`UPDATE artist_payouts SET amount = 0`)).rejects.toThrow(
        /approved settlement run/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await pool.end();
      await db.drop();
    }
  });

  it('ClickHouse 0005: ticks and rollups rebuilt from the old tables, keeping each tick’s first ingestion', async () => {
    const db = await scratchDatabases(testConfig());
    const cfg = db.config.clickhouse;
    const server = createClickHouse(cfg, null);
    await server.command({ query: `CREATE DATABASE IF NOT EXISTS ${cfg.database}` });
    await server.close();
    const chc = createClickHouse(cfg);
    try {
      // The schema as it was: every file before 0005, recorded as migrateClickHouse records them.
      await chc.command({
        query: `CREATE TABLE schema_migrations (version String, checksum String, applied_at DateTime('UTC') DEFAULT now())
                ENGINE = MergeTree() ORDER BY version`,
      });
      for (const m of clickHouseMigrations().filter((m) => m.version < '0005')) {
        for (const statement of m.statements) await chc.command({ query: statement });
        await chc.insert({
          table: 'schema_migrations',
          values: [{ version: m.version, checksum: m.checksum }],
          format: 'JSONEachRow',
        });
      }
      const playId = randomUUID();
      const user = randomUUID();
      const track = randomUUID();
      const tick = (k: number, ingestedAt: string): TestTick => ({
        eventId: `00000000-0000-4000-8000-00000000000${k}`,
        playId,
        userId: user,
        trackId: track,
        country: 'DE',
        positionMs: k * 5000,
        eventTime: `2026-10-05T10:00:0${k}Z`,
        ingestedAt,
      });
      const early = [1, 2, 3, 4, 5, 6].map((k) => tick(k, '2026-10-05T10:00:30Z'));
      await insertTicks(chc, early);
      // Tick 6 delivered again after the cut-off (a Kafka re-delivery), in a part of its own.
      await insertTicks(chc, [tick(6, '2026-11-03T09:00:00Z')]);

      expect((await migrateClickHouse(cfg))[0]).toBe('0005_first_ingestion');
      const rows = async <T>(query: string) => (await chc.query({ query, format: 'JSONEachRow' })).json<T>();
      expect(await rows(`SELECT count() AS n, uniqExact(event_id) AS events FROM play_ticks`)).toEqual([
        { n: '7', events: '6' },
      ]);
      // Before the cut-off the play had all six ticks, whatever merges do later.
      const atCutoff = `
        SELECT uniqExactMerge(ticks) AS ticks FROM plays
        WHERE play_id = toUUID('${playId}') AND ingested_hour < toDateTime('2026-11-01 02:00:00', 'UTC')`;
      expect(await rows(atCutoff)).toEqual([{ ticks: '6' }]);
      await chc.command({ query: 'OPTIMIZE TABLE play_ticks FINAL' });
      await chc.command({ query: 'OPTIMIZE TABLE plays FINAL' });
      expect(await rows(atCutoff)).toEqual([{ ticks: '6' }]);
      expect(
        await rows(
          `SELECT toString(ingested_at) AS at FROM play_ticks WHERE event_id = toUUID('${tick(6, '').eventId}')`,
        ),
      ).toEqual([{ at: '2026-10-05 10:00:30' }]);
      // The view feeds the new rollup: a tick arriving now is in it, under its ingestion hour. (The copy
      // delivered again keeps its own, later row: past any cut-off before it, and adding nothing after.)
      await insertTicks(chc, [{ ...tick(7, '2026-10-05T11:20:00Z'), eventId: randomUUID() }]);
      expect(
        await rows(`SELECT toString(ingested_hour) AS hour, uniqExactMerge(ticks) AS ticks FROM plays
                    WHERE play_id = toUUID('${playId}') GROUP BY hour ORDER BY hour`),
      ).toEqual([
        { hour: '2026-10-05 10:00:00', ticks: '6' },
        { hour: '2026-10-05 11:00:00', ticks: '1' },
        { hour: '2026-11-03 09:00:00', ticks: '1' },
      ]);
      expect(
        await rows(`SELECT uniqExactMerge(ticks) AS ticks FROM plays WHERE play_id = toUUID('${playId}')`),
      ).toEqual([{ ticks: '7' }]);
      expect(
        await rows(
          `SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '%before_0005'`,
        ),
      ).toEqual([]);
    } finally {
      await chc.close();
      await db.drop();
    }
  });
});

describe('what the database guards', () => {
  let s: RoyaltiesStores;
  let pool: DatabasePool;
  let artistId: string;
  let trackId: string;

  beforeAll(async () => {
    s = await royaltiesStores(testConfig());
    pool = s.pool;
    ({
      artistId,
      trackIds: [trackId = ''],
    } = await addArtist(pool, 1));
    await pool.query(sql.unsafe`INSERT INTO royalty_rate_versions (rate_version) VALUES (1)`);
    await pool.query(sql.unsafe`
      INSERT INTO royalty_rates (artist_id, country, rate_per_play, currency, rate_version, effective_from)
      VALUES (${artistId}, 'DE', 0.004, 'EUR', 1, '2024-01-01')`);
    await pool.query(
      sql.unsafe`UPDATE royalty_rate_versions SET published_at = now() WHERE rate_version = 1`,
    );
  });
  afterAll(() => s?.drop());

  const newRun = (month: string, status = 'running') =>
    pool.oneFirst(sql.unsafe`
      INSERT INTO settlement_runs (month, ingestion_cutoff, rate_version, policy_version, code_version, adjustments_through,
                                   status, workflow_id, rerun, started_by)
      VALUES (${month}::date, '2026-11-01T02:00:00Z', 1, 1, 1, now(), ${status}, ${`wf-${randomUUID()}`},
              ${Math.floor(Math.random() * 1e6)}, 'finance-alice')
      RETURNING run_id::text`);

  it('rates are append-only, and a published version takes no more rows', async () => {
    await expect(pool.query(sql.unsafe`UPDATE royalty_rates SET rate_per_play = 1`)).rejects.toThrow(
      /append-only/,
    );
    await expect(pool.query(sql.unsafe`DELETE FROM royalty_rates`)).rejects.toThrow(/append-only/);
    await expect(pool.query(sql.unsafe`TRUNCATE royalty_rates`)).rejects.toThrow(/append-only/);
    await expect(
      pool.query(sql.unsafe`
        INSERT INTO royalty_rates (artist_id, country, rate_per_play, currency, rate_version, effective_from)
        VALUES (${artistId}, 'US', 0.004, 'USD', 1, '2024-01-01')`),
    ).rejects.toThrow(/rate version 1 is published/);
    await expect(
      pool.query(sql.unsafe`UPDATE royalty_rate_versions SET published_at = now()`),
    ).rejects.toThrow(/published and cannot change/);
    await expect(pool.query(sql.unsafe`UPDATE royalty_policies SET min_play_seconds = 1`)).rejects.toThrow(
      /append-only/,
    );
    await expect(pool.query(sql.unsafe`DELETE FROM royalty_policies`)).rejects.toThrow(/append-only/);
  });

  it('an approved run, its lines and payouts never change; pins never change; runs are never deleted', async () => {
    const runId = await newRun('2026-01-01');
    await pool.query(sql.unsafe`
      INSERT INTO settlement_snapshot_lines (run_id, track_id, artist_id, country, plays) VALUES (${runId}, ${trackId}, ${artistId}, 'DE', 10)`);
    await pool.query(sql.unsafe`
      INSERT INTO artist_payouts (run_id, artist_id, currency, plays, amount) VALUES (${runId}, ${artistId}, 'EUR', 10, 0.04)`);
    await expect(
      pool.query(sql.unsafe`UPDATE settlement_runs SET rate_version = 2 WHERE run_id = ${runId}`),
    ).rejects.toThrow(/pins of settlement run .* are frozen/);
    // Four eyes, in the database: the starter cannot be the approver.
    await expect(
      pool.query(
        sql.unsafe`UPDATE settlement_runs SET status = 'approved', decided_by = 'finance-alice' WHERE run_id = ${runId}`,
      ),
    ).rejects.toThrow(/settlement_runs_four_eyes/);
    await pool.query(
      sql.unsafe`UPDATE settlement_runs SET status = 'approved', decided_by = 'finance-bob' WHERE run_id = ${runId}`,
    );

    await expect(
      pool.query(sql.unsafe`UPDATE settlement_runs SET status_reason = 'x' WHERE run_id = ${runId}`),
    ).rejects.toThrow(/approved and cannot change/);
    await expect(pool.query(sql.unsafe`DELETE FROM settlement_runs WHERE run_id = ${runId}`)).rejects.toThrow(
      /never deleted/,
    );
    await expect(pool.query(sql.unsafe`TRUNCATE settlement_runs CASCADE`)).rejects.toThrow(/never truncated/);
    await expect(
      pool.query(sql.unsafe`UPDATE artist_payouts SET amount = 1 WHERE run_id = ${runId}`),
    ).rejects.toThrow(/approved settlement run/);
    await expect(
      pool.query(sql.unsafe`DELETE FROM settlement_snapshot_lines WHERE run_id = ${runId}`),
    ).rejects.toThrow(/approved settlement run/);
    await expect(
      pool.query(sql.unsafe`
        INSERT INTO payout_lines (run_id, artist_id, track_id, country, plays, rate_per_play, currency, exact_amount, amount)
        VALUES (${runId}, ${artistId}, ${trackId}, 'DE', 1, 0.004, 'EUR', 0.004, 0.00)`),
    ).rejects.toThrow(/approved settlement run/);
    // One approved run a month; one run computing at a time.
    const second = await newRun('2026-01-01', 'awaiting_approval');
    await expect(
      pool.query(
        sql.unsafe`UPDATE settlement_runs SET status = 'approved', decided_by = 'finance-bob' WHERE run_id = ${second}`,
      ),
    ).rejects.toThrow(/settlement_runs_one_approved/);
    await newRun('2026-02-01');
    await expect(newRun('2026-02-01')).rejects.toThrow(/settlement_runs_one_running/);
  });

  it('payout SQL allocates cents exactly as the TypeScript rule, for any lines', async () => {
    const acts = createRoyaltiesActivities(s.deps);
    const artists = [
      artistId,
      ...(await Promise.all([1, 2].map(async () => (await addArtist(pool, 1)).artistId))),
    ];
    const tracks = Array.from({ length: 8 }, () => randomUUID());
    const countries = ['DE', 'US', 'GB', 'FR'];
    const currencyOf: Record<string, string> = { DE: 'EUR', FR: 'EUR', US: 'USD', GB: 'GBP' };
    let version = 1;
    let month = 0;
    const line = fc.record({
      artist: fc.constantFrom(...artists),
      track: fc.constantFrom(...tracks),
      country: fc.constantFrom(...countries),
      plays: fc.integer({ min: 1, max: 50_000 }),
    });
    const rate = fc.integer({ min: 1, max: 99_999 }).map((m) => `0.${String(m).padStart(6, '0')}`);
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(line, { minLength: 1, maxLength: 40, selector: (l) => `${l.track}|${l.country}` }),
        fc.array(rate, {
          minLength: artists.length * countries.length,
          maxLength: artists.length * countries.length,
        }),
        fc.integer({ min: 1, max: 4 }),
        async (lines, rates, shards) => {
          version++;
          month++;
          await pool.query(sql.unsafe`INSERT INTO royalty_rate_versions (rate_version) VALUES (${version})`);
          const rateOf = new Map<string, string>();
          for (const [i, a] of artists.entries())
            for (const [j, c] of countries.entries()) {
              const r = rates[i * countries.length + j] as string;
              rateOf.set(`${a}|${c}`, r);
              await pool.query(sql.unsafe`
                INSERT INTO royalty_rates (artist_id, country, rate_per_play, currency, rate_version, effective_from)
                VALUES (${a}, ${c}, ${r}::numeric, ${currencyOf[c] as string}, ${version}, '2024-01-01')`);
            }
          await pool.query(
            sql.unsafe`UPDATE royalty_rate_versions SET published_at = now() WHERE rate_version = ${version}`,
          );
          const m = `${2030 + Math.floor(month / 12)}-${String((month % 12) + 1).padStart(2, '0')}-01`;
          const runId = await pool.oneFirst(sql.unsafe`
            INSERT INTO settlement_runs (month, ingestion_cutoff, rate_version, policy_version, code_version, adjustments_through,
                                         status, workflow_id, rerun, started_by)
            VALUES (${m}::date, ${m}::date + interval '1 month', ${version}, 1, 1, now(), 'running', ${`wf-${randomUUID()}`}, 0, 'x')
            RETURNING run_id::text`);
          for (const l of lines)
            await pool.query(sql.unsafe`
              INSERT INTO settlement_snapshot_lines (run_id, track_id, artist_id, country, plays)
              VALUES (${runId}, ${l.track}, ${l.artist}, ${l.country}, ${l.plays})`);
          for (let shard = 0; shard < shards; shard++)
            await acts.computeShardPayouts({ runId, snapshotRunId: runId, shard, shards });
          const paid = await pool.any(sql.type(
            z.object({
              artist_id: z.string(),
              track_id: z.string(),
              country: z.string(),
              currency: z.string(),
              amount: z.string(),
            }),
          )`
            SELECT artist_id::text AS artist_id, track_id::text AS track_id, country::text AS country, currency::text AS currency,
                   amount::text AS amount
            FROM payout_lines WHERE run_id = ${runId}`);
          expect(paid).toHaveLength(lines.length);
          const cents = new Map(
            paid.map((p) => [`${p.track_id}|${p.country}`, BigInt(p.amount.replace('.', ''))]),
          );
          const groups = new Map<string, typeof lines>();
          for (const l of lines) {
            const key = `${l.artist}|${currencyOf[l.country]}`;
            groups.set(key, [...(groups.get(key) ?? []), l]);
          }
          for (const group of groups.values()) {
            group.sort((a, b) =>
              a.track < b.track ? -1 : a.track > b.track ? 1 : a.country < b.country ? -1 : 1,
            );
            const micros = group.map(
              (l) =>
                BigInt(l.plays) *
                BigInt((rateOf.get(`${l.artist}|${l.country}`) as string).replace('0.', '')),
            );
            const { shares } = allocateLargestRemainder(micros);
            expect(group.map((l) => cents.get(`${l.track}|${l.country}`))).toEqual(shares);
          }
        },
      ),
      { numRuns: 12 },
    );
  });
});
