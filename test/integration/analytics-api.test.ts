import type { ClickHouseClient } from '@clickhouse/client';
import type { FastifyInstance } from 'fastify';
import type { DatabasePool } from 'slonik';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { createPostgresPool } from '../../lib/clients/postgres';
import type { Config } from '../../lib/config';
import { migrateClickHouse } from '../../sql/migrate/clickhouse';
import { migratePostgres } from '../../sql/migrate/postgres';
import { generateTicks, type Dataset, type Tick } from '../../scripts/seed/generate';
import { runSeed } from '../../scripts/seed/run';
import { scratchDatabases } from '../../stack/scratch';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';
import { testConfig } from '../helpers/env';

/**
 * The analytics endpoints over seeded data, each checked against an independent computation over the
 * generated ticks (the SQL behind them is also checked query by query in analytics-appendix-queries.test.ts).
 */
const NOW = new Date('2025-05-20T12:00:00Z');
const opts = { scale: 'small' as const, seed: 21, now: NOW };
const dayOf = (iso: string) => iso.slice(0, 10);

describe('analytics endpoints', () => {
  let db: Awaited<ReturnType<typeof scratchDatabases>>;
  let cfg: Config;
  let pool: DatabasePool;
  let ch: ClickHouseClient;
  let app: FastifyInstance;
  let data: Dataset;
  let ticks: Tick[];
  let ops: string;

  beforeAll(async () => {
    db = await scratchDatabases(testConfig());
    await migratePostgres(db.config.postgres);
    await migrateClickHouse(db.config.clickhouse);
    data = (await runSeed(db.config, { ...opts, via: 'clickhouse' })).data!;
    ticks = [...generateTicks(data, opts)];
    pool = await createPostgresPool(db.config.postgres, 2);
    ch = createClickHouse(db.config.clickhouse);
    cfg = withTempIssuer(db.config);
    app = await testApp(cfg, { pool, clickhouse: ch });
    ops = await tokenFor(cfg, 'ops', ['operator']);
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await ch?.close();
    await pool?.end();
    await db?.drop();
  });

  const get = async (url: string, token = ops) => {
    const res = await app.inject({ method: 'GET', url, headers: bearer(token) });
    expect([url, res.statusCode]).toEqual([url, 200]);
    return res.json();
  };
  const at = `at=${encodeURIComponent(NOW.toISOString())}`;

  it('premium-top-countries: the five countries with most plays in 30 days, and their premium listeners', async () => {
    const from = dayOf(new Date(NOW.getTime() - 30 * 86_400_000).toISOString());
    const plays = new Map<string, Set<string>>();
    for (const t of ticks)
      if (dayOf(t.event_time) >= from)
        plays.set(t.country, (plays.get(t.country) ?? new Set()).add(t.play_id));
    const expected = [...plays.entries()]
      .map(([c, s]) => ({ country: c, plays: s.size }))
      .sort((a, b) => b.plays - a.plays || (a.country < b.country ? -1 : 1))
      .slice(0, 5);
    const body = await get(`/v1/analytics/premium-top-countries?days=30&${at}`);
    expect(body.countries).toEqual(expected);
    const top = new Set(expected.map((c) => c.country));
    expect(body.users.map((u: { user_id: string }) => u.user_id).sort()).toEqual(
      data.users
        .filter((u) => u.tier === 'premium' && top.has(u.country))
        .map((u) => u.user_id)
        .sort(),
    );
  });

  it('account-sharing: exactly the generated sharers seen from three or more countries', async () => {
    const body = await get(`/v1/analytics/account-sharing?${at}`);
    expect(body.users.length).toBeGreaterThan(0);
    for (const u of body.users) {
      expect(data.sharerUserIds).toContain(u.user_id);
      expect(u.unique_countries_30d).toBeGreaterThanOrEqual(3);
    }
  });

  it('bot-suspects: a bot has rapid skips in the last ten minutes', async () => {
    const bot = data.botUserIds.find((id) =>
      ticks.some((t) => t.user_id === id && Date.parse(t.event_time) > NOW.getTime() - 600_000),
    )!;
    const perPlay = new Map<string, number>();
    for (const t of ticks) {
      const ms = Date.parse(t.event_time);
      if (t.user_id === bot && ms > NOW.getTime() - 600_000 && ms <= NOW.getTime())
        perPlay.set(t.play_id, (perPlay.get(t.play_id) ?? 0) + 1);
    }
    const body = await get(`/v1/analytics/bot-suspects?userId=${bot}&${at}`);
    expect(body.rapidSkips).toBe([...perPlay.values()].filter((n) => n < 3).length);
    expect(body.rapidSkips).toBeGreaterThan(0);
  });

  it('early-churn, retention-cohorts and campaign-attribution answer with rows', async () => {
    expect((await get(`/v1/analytics/early-churn?days=30&${at}`)).users.length).toBeGreaterThan(0);
    expect((await get(`/v1/analytics/retention-cohorts?days=30&${at}`)).cells.length).toBeGreaterThan(0);
    expect((await get('/v1/analytics/campaign-attribution')).rows.length).toBeGreaterThan(0);
  });

  it("creator stats: plays per day and country, unique listeners and royalty-bearing plays of the artist's tracks", async () => {
    // The artist with the most plays, over the last week of the seeded month.
    const artistOf = new Map(data.tracks.map((t) => [t.track_id, t.artist_id]));
    const count = new Map<string, number>();
    for (const t of ticks)
      count.set(artistOf.get(t.track_id) as string, (count.get(artistOf.get(t.track_id) as string) ?? 0) + 1);
    const artist = [...count.entries()].sort((a, b) => b[1] - a[1])[0]![0];
    const from = '2025-05-13';
    const to = '2025-05-19';
    const mine = ticks.filter((t) => artistOf.get(t.track_id) === artist);

    const daily = new Map<string, Set<string>>();
    const listeners = new Set<string>();
    for (const t of mine) {
      const d = dayOf(t.event_time);
      if (d < from || d > to) continue;
      daily.set(
        `${d}|${t.country}`,
        (daily.get(`${d}|${t.country}`) ?? new Set()).add(`${t.track_id}|${t.play_id}`),
      );
      listeners.add(t.user_id);
    }
    const playsById = new Map<string, { first: string; n: number }>();
    for (const t of mine) {
      const p = playsById.get(t.play_id) ?? { first: t.event_time, n: 0 };
      p.n++;
      if (t.event_time < p.first) p.first = t.event_time;
      playsById.set(t.play_id, p);
    }
    const royalty = [...playsById.values()].filter(
      (p) => p.n >= 6 && dayOf(p.first) >= from && dayOf(p.first) <= to,
    ).length;

    const creator = await tokenFor(cfg, artist, ['creator']);
    const body = await get(`/v1/artists/${artist}/stats?from=${from}&to=${to}`, creator);
    expect(
      new Map(
        body.daily.map((r: { day: string; country: string; plays: number }) => [
          `${r.day}|${r.country}`,
          r.plays,
        ]),
      ),
    ).toEqual(new Map([...daily.entries()].map(([k, s]) => [k, s.size])));
    expect(body.uniqueListeners).toBe(listeners.size);
    expect(body.royaltyBearingPlays).toBe(royalty);
    expect(royalty).toBeGreaterThan(0);

    const someoneElse = await tokenFor(cfg, data.artists.find((a) => a.artist_id !== artist)!.artist_id, [
      'creator',
    ]);
    const refused = await app.inject({
      method: 'GET',
      url: `/v1/artists/${artist}/stats?from=${from}&to=${to}`,
      headers: bearer(someoneElse),
    });
    expect(refused.statusCode).toBe(403);
  });
});
