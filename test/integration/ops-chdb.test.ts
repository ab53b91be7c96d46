import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ClickHouseClient } from '@clickhouse/client';
import { checksumQuery } from '../../activities/ops/backups/clickhouse';
import {
  listenerRecommendations,
  listenerTracks,
  trackNeighbors,
} from '../../activities/ops/recommendations';
import { ch, type ChFragment } from '../../lib/clickhouse-sql';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { clickHouseMigrations, migrateClickHouse } from '../../sql/migrate/clickhouse';
import { generateDataset, generateTicks } from '../../scripts/seed/generate';
import { chDateTime, TICK_COLUMNS } from '../../scripts/seed/load';
import { stackContext } from '../../stack/context';
import { chdbPython } from '../../stack/services/chdb';
import { scratchDatabases } from '../../stack/scratch';
import { testConfig } from '../helpers/env';

/**
 * The ops jobs' ClickHouse SQL — the recommender's three queries and the backup checksum — on Debian's
 * 18.16 and on chdb (a current engine): both accept them and give the same rows.
 */
const NOW = new Date('2025-05-20T12:00:00Z');
const opts = { scale: 'small' as const, seed: 5, now: NOW, plays: 1500 };
const FROM = new Date(NOW.getTime() - 30 * 86_400_000);
const RUN = 'recommendations-chdb';
const tsv = (rows: unknown[][]) => rows.map((r) => r.join('\t')).join('\n') + '\n';

describe('ops ClickHouse SQL on 18.16 and on a current release (chdb)', () => {
  let db: Awaited<ReturnType<typeof scratchDatabases>>;
  let client: ClickHouseClient;
  const data = generateDataset(opts);
  const ticks = [...generateTicks(data, opts)];
  const plays = checksumQuery('plays', 'AggregatingMergeTree', [
    { name: 'day', type: 'Date' },
    { name: 'track_id', type: 'UUID' },
    { name: 'play_id', type: 'UUID' },
    { name: 'user_id', type: 'UUID' },
    { name: 'country', type: 'FixedString(2)' },
    { name: 'started_at', type: "AggregateFunction(min, DateTime('UTC'))" },
    { name: 'ticks', type: 'AggregateFunction(uniqExact, UUID)' },
    { name: 'max_position_ms', type: 'AggregateFunction(max, UInt32)' },
  ]);
  const queries: Record<string, ChFragment> = {
    listenerTracks: ch`SELECT toString(user_id) AS user_id, toString(track_id) AS track_id, plays
      FROM (${listenerTracks(FROM, { shard: 1, shards: 3 })}) ORDER BY user_id, track_id`,
    trackNeighbors: ch`SELECT toString(track_id) AS track_id, toString(neighbor) AS neighbor, listeners
      FROM (${trackNeighbors(FROM, 5)}) ORDER BY track_id, neighbor`,
    recommendations: listenerRecommendations(RUN, FROM, 5, { shard: 0, shards: 2 }),
    playsChecksum: plays,
  };

  beforeAll(async () => {
    db = await scratchDatabases(testConfig());
    await migrateClickHouse(db.config.clickhouse);
    client = createClickHouse(db.config.clickhouse);
    await client.command({
      query: `INSERT INTO play_ticks (${TICK_COLUMNS.join(', ')}) FORMAT TabSeparated\n${tsv(
        ticks.map((t) => [
          t.event_id,
          t.play_id,
          t.user_id,
          t.track_id,
          t.country,
          t.device_id,
          t.position_ms,
          chDateTime(t.event_time),
        ]),
      )}`,
    });
    await client.command({
      query: ch`INSERT INTO track_neighbors (run_id, track_id, neighbor, listeners)
        SELECT ${RUN}, track_id, neighbor, listeners FROM (${trackNeighbors(FROM, 5)})`.text,
    });
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await db?.drop();
  });

  it('runs every query on both engines with the same answers', async () => {
    const neighbors = await (
      await client.query({
        query: 'SELECT run_id, track_id, neighbor, listeners FROM track_neighbors',
        format: 'TabSeparated',
      })
    ).text();
    const payload = {
      database: 'cadenza',
      statements: clickHouseMigrations().flatMap((m) => m.statements),
      inserts: [
        {
          table: 'play_ticks',
          columns: TICK_COLUMNS,
          tsv: tsv(
            ticks.map((t) => [
              t.event_id,
              t.play_id,
              t.user_id,
              t.track_id,
              t.country,
              t.device_id,
              t.position_ms,
              chDateTime(t.event_time),
            ]),
          ),
        },
        {
          table: 'track_neighbors',
          columns: ['run_id', 'track_id', 'neighbor', 'listeners'],
          tsv: neighbors,
        },
      ],
      queries: Object.fromEntries(Object.entries(queries).map(([k, q]) => [k, q.text])),
    };
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'cadenza-ops-chdb-')), 'payload.json');
    writeFileSync(file, JSON.stringify(payload));
    const { stdout } = await promisify(execFile)(
      chdbPython(stackContext()),
      [path.join(__dirname, '..', 'chdb', 'run.py'), file],
      {
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    const out = JSON.parse(stdout) as {
      fatal?: string;
      results: Record<string, unknown[] | { error: string }>;
    };
    expect(out.fatal).toBeUndefined();
    const normalise = (rows: unknown[]) =>
      rows.map((r) => JSON.stringify(Object.entries(r as object).map(([k, v]) => [k, String(v)])));
    for (const [name, q] of Object.entries(queries)) {
      const modern = out.results[name];
      expect([name, modern && !Array.isArray(modern) ? modern.error : 'ok']).toEqual([name, 'ok']);
      const old = await (await client.query({ query: q.text, format: 'JSONEachRow' })).json<object>();
      expect([name, old.length > 0]).toEqual([name, true]);
      expect([name, normalise(modern as unknown[])]).toEqual([name, normalise(old)]);
    }
  }, 180_000);
});
