import type { ClickHouseClient } from '@clickhouse/client';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { clickHouseMigrations, migrateClickHouse } from '../../sql/migrate/clickhouse';
import { loadTicksToClickHouse } from '../../scripts/seed/load';
import type { Tick } from '../../scripts/seed/generate';
import { scratchDatabases } from '../../stack/scratch';
import { testConfig } from '../helpers/env';

/** The ClickHouse DDL on Debian's 18.16 server: from empty, idempotent, and duplicates collapse. */
describe('ClickHouse schema (18.16)', () => {
  let db: Awaited<ReturnType<typeof scratchDatabases>>;
  let client: ClickHouseClient;
  const q = async <T>(query: string) => (await client.query({ query, format: 'JSONEachRow' })).json<T>();

  beforeAll(async () => {
    db = await scratchDatabases(testConfig());
    client = createClickHouse(db.config.clickhouse);
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await db?.drop();
  });

  it('applies every DDL file to an empty database and records it; a second run is a no-op', async () => {
    const applied = await migrateClickHouse(db.config.clickhouse);
    expect(applied).toEqual(clickHouseMigrations().map((m) => m.version));
    expect(await migrateClickHouse(db.config.clickhouse)).toEqual([]);
    const tables = (
      await q<{ name: string }>('SELECT name FROM system.tables WHERE database = currentDatabase()')
    ).map((t) => t.name);
    expect(tables).toEqual(
      expect.arrayContaining(['play_ticks', 'plays', 'plays_mv', 'dim_tracks', 'dim_campaigns', 'dim_users']),
    );
    // The per-tick daily rollups are gone (0004): their counts come from `plays`.
    expect(tables).not.toEqual(expect.arrayContaining(['track_daily']));
    expect(tables).not.toEqual(expect.arrayContaining(['user_daily']));
  });

  it('collapses a tick delivered twice: one event, one play, counted once by the rollup', async () => {
    const base = Date.parse('2025-05-10T10:00:00Z');
    const ticks: Tick[] = Array.from({ length: 7 }, (_, k) => ({
      event_id: `00000000-0000-4000-8000-00000000000${k}`,
      play_id: '11111111-1111-4111-8111-111111111111',
      user_id: '22222222-2222-4222-8222-222222222222',
      track_id: '33333333-3333-4333-8333-333333333333',
      country: 'SE',
      device_id: 'dev-1',
      position_ms: (k + 1) * 5000,
      event_time: new Date(base + (k + 1) * 5000).toISOString(),
    }));
    await loadTicksToClickHouse(client, ticks, () => undefined);
    await loadTicksToClickHouse(client, ticks.slice(2, 5), () => undefined); // a re-delivery of three ticks
    await client.command({ query: 'OPTIMIZE TABLE play_ticks FINAL' });
    expect(await q('SELECT count() AS n FROM play_ticks')).toEqual([{ n: '7' }]);
    // Whether or not `plays` has merged its parts yet, the counts are exact.
    expect(
      await q(
        'SELECT uniqExactMerge(ticks) AS t, minMerge(started_at) AS s, maxMerge(max_position_ms) AS m FROM plays GROUP BY play_id',
      ),
    ).toEqual([{ t: '7', s: '2025-05-10 10:00:05', m: 35000 }]);
    expect(await q('SELECT uniqExact(play_id) AS p, uniqExact(user_id) AS l FROM plays')).toEqual([
      { p: '1', l: '1' },
    ]);
  });
});
