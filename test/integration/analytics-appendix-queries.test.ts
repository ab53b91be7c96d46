import type { ClickHouseClient } from '@clickhouse/client';
import type { DatabasePool } from 'slonik';
import {
  campaignAttribution,
  earlyChurn,
  rapidSkips,
  retentionCohorts,
  royaltyBearingPlays,
  topCountriesByPlays,
} from '../../api/queries/analytics';
import {
  accountSharing,
  payoutDivergence,
  premiumUsersIn,
  royaltyLines,
  type PlaysRow,
} from '../../api/queries/analytics-postgres';
import type { ChFragment } from '../../lib/clickhouse-sql';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { createPostgresPool } from '../../lib/clients/postgres';
import { migrateClickHouse } from '../../sql/migrate/clickhouse';
import { migratePostgres } from '../../sql/migrate/postgres';
import { generateTicks, type Dataset, type Tick } from '../../scripts/seed/generate';
import { runSeed, type SeedReport } from '../../scripts/seed/run';
import { scratchDatabases } from '../../stack/scratch';
import { testConfig } from '../helpers/env';

/**
 * Every appendix query runs on seeded data and equals an independent computation over the same
 * generated ticks (plain TypeScript over the generator's output, no SQL).
 */
const NOW = new Date('2025-05-20T12:00:00Z');
const FROM = new Date(NOW.getTime() - 30 * 86_400_000);
const opts = { scale: 'small' as const, seed: 7, now: NOW };
const dayOf = (iso: string) => iso.slice(0, 10);
const fromDay = dayOf(FROM.toISOString());

describe('appendix queries on seeded data', () => {
  let db: Awaited<ReturnType<typeof scratchDatabases>>;
  let pool: DatabasePool;
  let chc: ClickHouseClient;
  let seeded: SeedReport;
  let data: Dataset;
  let ticks: Tick[];
  const rows = async <T>(q: ChFragment) =>
    (await chc.query({ query: q.text, format: 'JSONEachRow' })).json<T>();

  beforeAll(async () => {
    db = await scratchDatabases(testConfig());
    await migratePostgres(db.config.postgres);
    await migrateClickHouse(db.config.clickhouse);
    seeded = await runSeed(db.config, { ...opts, via: 'clickhouse' });
    data = seeded.data!;
    ticks = [...generateTicks(data, opts)];
    pool = await createPostgresPool(db.config.postgres, 2);
    chc = createClickHouse(db.config.clickhouse);
  }, 120_000);
  afterAll(async () => {
    await chc?.close();
    await pool?.end();
    await db?.drop();
  });

  /** play_id → its ticks (on days since FROM) */
  function playsSince(day: string) {
    const plays = new Map<
      string,
      { user: string; track: string; country: string; ticks: number; days: Set<string>; first: string }
    >();
    for (const t of ticks) {
      if (dayOf(t.event_time) < day) continue;
      const p = plays.get(t.play_id) ?? {
        user: t.user_id,
        track: t.track_id,
        country: t.country,
        ticks: 0,
        days: new Set<string>(),
        first: t.event_time,
      };
      p.ticks++;
      p.days.add(dayOf(t.event_time));
      if (t.event_time < p.first) p.first = t.event_time;
      plays.set(t.play_id, p);
    }
    return plays;
  }

  it('loaded every generated tick exactly once', async () => {
    const [count] = await rows<{ n: string; distinct: string }>({
      text: 'SELECT count() AS n, uniqExact(event_id) AS distinct FROM play_ticks',
    } as ChFragment);
    expect(Number(count?.distinct)).toBe(ticks.length);
    expect(seeded.ticks).toBe(ticks.length);
  });

  it('1A: premium users in the top-5 countries by plays', async () => {
    const byCountry = new Map<string, number>();
    for (const p of playsSince(fromDay).values())
      byCountry.set(p.country, (byCountry.get(p.country) ?? 0) + 1);
    const expectedTop = [...byCountry.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, 5);
    const top = await rows<{ country: string; plays: string }>(topCountriesByPlays(FROM));
    expect(top.map((r) => [r.country, Number(r.plays)])).toEqual(expectedTop);

    const countries = top.map((r) => r.country);
    const users = await premiumUsersIn(pool, countries);
    const premium = new Set(data.subscriptions.map((s) => s.user_id));
    const expectedUsers = data.users.filter(
      (u) => u.tier === 'premium' && premium.has(u.user_id) && countries.includes(u.country),
    );
    expect(users.map((u) => u.user_id).sort()).toEqual(expectedUsers.map((u) => u.user_id).sort());
    expect(users.length).toBeGreaterThan(10);
  });

  it('2A: users seen from at least three countries in 30 days', async () => {
    const found = await accountSharing(pool, NOW);
    const countries = new Map<string, Set<string>>();
    for (const s of data.sessions) {
      const at = Date.parse(s.started_at);
      if (at < FROM.getTime() || at >= NOW.getTime()) continue;
      countries.set(s.user_id, (countries.get(s.user_id) ?? new Set()).add(s.ip_country));
    }
    const expected = [...countries.entries()].filter(([, c]) => c.size >= 3).map(([u, c]) => [u, c.size]);
    expect(found.map((r) => [r.user_id, r.unique_countries_30d]).sort()).toEqual(expected.sort());
    expect(found.length).toBeGreaterThan(0);
    // Everyone found is one of the generator's account sharers.
    for (const r of found) expect(data.sharerUserIds).toContain(r.user_id);
  });

  it('3A: new sign-ups with more than five plays, counting those under 30 s', async () => {
    const found = await rows<{ user_id: string; total_plays: string; short_plays: string }>(earlyChurn(FROM));
    const newUsers = new Set(data.users.filter((u) => dayOf(u.created_at) >= fromDay).map((u) => u.user_id));
    const perUser = new Map<string, { total: number; short: number }>();
    for (const p of playsSince(fromDay).values()) {
      if (!newUsers.has(p.user)) continue;
      const u = perUser.get(p.user) ?? { total: 0, short: 0 };
      u.total++;
      if (p.ticks < 6) u.short++;
      perUser.set(p.user, u);
    }
    const expected = [...perUser.entries()]
      .filter(([, u]) => u.total > 5)
      .map(([id, u]) => [id, u.total, u.short]);
    expect(found.map((r) => [r.user_id, Number(r.total_plays), Number(r.short_plays)]).sort()).toEqual(
      expected.sort(),
    );
    expect(found.length).toBeGreaterThan(0);
  });

  it('3B: a bot-like user has rapid skips in the last ten minutes; an ordinary user has none', async () => {
    const bot = data.botUserIds.find((id) =>
      ticks.some((t) => t.user_id === id && Date.parse(t.event_time) > NOW.getTime() - 600_000),
    );
    expect(bot).toBeDefined();
    const found = await rows<{ play_id: string; listened_s: string }>(rapidSkips(bot!, NOW));
    const perPlay = new Map<string, number>();
    for (const t of ticks) {
      const at = Date.parse(t.event_time);
      if (t.user_id === bot && at > NOW.getTime() - 600_000 && at <= NOW.getTime())
        perPlay.set(t.play_id, (perPlay.get(t.play_id) ?? 0) + 1);
    }
    const expected = [...perPlay.entries()].filter(([, n]) => n * 5 < 15).map(([id]) => id);
    expect(found.map((r) => r.play_id).sort()).toEqual(expected.sort());
    expect(found.length).toBeGreaterThan(0);

    const ordinary = data.users.find((u) => !data.botUserIds.includes(u.user_id))!.user_id;
    expect(await rows(rapidSkips(ordinary, NOW))).toEqual([]);
  });

  it('4A: retention by cohort', async () => {
    const found = await rows<{ cohort_date: string; activity_date: string; active_users: string }>(
      retentionCohorts(FROM),
    );
    const days = new Map<string, Set<string>>();
    for (const t of ticks) days.set(t.user_id, (days.get(t.user_id) ?? new Set()).add(dayOf(t.event_time)));
    const cells = new Map<string, number>();
    for (const ds of days.values()) {
      const cohort = [...ds].sort()[0] as string;
      if (cohort < fromDay) continue;
      for (const d of ds)
        if (d >= fromDay) cells.set(`${cohort}|${d}`, (cells.get(`${cohort}|${d}`) ?? 0) + 1);
    }
    expect(
      new Map(found.map((r) => [`${r.cohort_date}|${r.activity_date}`, Number(r.active_users)])),
    ).toEqual(cells);
    expect(found.length).toBeGreaterThan(10);
  });

  it('4B: plays per artist and track during promotional campaigns', async () => {
    const found = await rows<{
      campaign_id: string;
      artist_id: string;
      track_id: string;
      plays_during_campaign: string;
    }>(campaignAttribution());
    const artistOf = new Map(data.tracks.map((t) => [t.track_id, t.artist_id]));
    const perTrackDay = new Map<string, Set<string>>();
    for (const t of ticks) {
      const key = `${t.track_id}|${dayOf(t.event_time)}`;
      perTrackDay.set(key, (perTrackDay.get(key) ?? new Set()).add(t.play_id));
    }
    const expected = new Map<string, number>();
    for (const c of data.campaigns.filter((c) => c.campaign_type === 'promotional')) {
      for (const [key, plays] of perTrackDay) {
        const [track, day] = key.split('|') as [string, string];
        if (artistOf.get(track) !== c.promoted_artist_id || day < c.start_date || day > c.end_date) continue;
        const k = `${c.campaign_id}|${track}`;
        expected.set(k, (expected.get(k) ?? 0) + plays.size);
      }
    }
    expect(
      new Map(found.map((r) => [`${r.campaign_id}|${r.track_id}`, Number(r.plays_during_campaign)])),
    ).toEqual(expected);
    for (const r of found) expect(artistOf.get(r.track_id)).toBe(r.artist_id);
    expect(found.length).toBeGreaterThan(0);
  });

  it('5A: royalty per artist/track/country = royalty-bearing plays × local rate, exactly', async () => {
    const s = seeded.settlement!;
    const plays = await rows<PlaysRow>(royaltyBearingPlays(s.from, s.to));
    expect(new Map(plays.map((r) => [`${r.artist_id}|${r.track_id}|${r.country}`, Number(r.plays)]))).toEqual(
      s.plays,
    );
    const lines = await royaltyLines(pool, s.month, plays);
    expect(lines).toHaveLength(plays.length);
    const rate = new Map(data.royaltyRates.map((r) => [`${r.artist_id}|${r.country}`, r.rate_per_play]));
    for (const l of lines) {
      const micros =
        BigInt(l.plays) * BigInt((rate.get(`${l.artist_id}|${l.country}`) as string).replace('.', ''));
      expect(l.royalty_amount).toBe(`${micros / 1_000_000n}.${String(micros % 1_000_000n).padStart(6, '0')}`);
    }
  });

  it('5B: exactly the artists whose payout diverges from plays × rate by more than 1 %', async () => {
    const s = seeded.settlement!;
    const plays = await rows<PlaysRow>(royaltyBearingPlays(s.from, s.to));
    const found = await payoutDivergence(pool, s.month, plays);
    expect(found.map((r) => r.artist_id).sort()).toEqual([...s.perturbedArtistIds].sort());
    expect(found.length).toBeGreaterThan(0);
    for (const r of found) expect(Number(r.divergence)).toBeGreaterThan(0.01);
  });
});
