import { createHash } from 'node:crypto';
import { isValidGtin, ISRC_PATTERN, upcFor } from '../../scripts/seed/codes';
import { COUNTRIES, generateDataset, generateTicks, type SeedOptions } from '../../scripts/seed/generate';

const opts: SeedOptions = { scale: 'small', seed: 11, now: new Date('2025-05-20T12:00:00Z'), plays: 2000 };
const digest = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex');

describe('synthetic data generator', () => {
  const data = generateDataset(opts);
  const ticks = [...generateTicks(data, opts)];

  it('is deterministic for a given seed, and different for another', () => {
    expect(digest(generateDataset(opts))).toBe(digest(data));
    expect(digest([...generateTicks(generateDataset(opts), opts)])).toBe(digest(ticks));
    expect(digest(generateDataset({ ...opts, seed: 12 }))).not.toBe(digest(data));
  });

  it('changes only the ticks when --plays changes', () => {
    const more = { ...opts, plays: 3000 };
    expect(digest(generateDataset(more))).toBe(digest(data));
    expect([...generateTicks(data, more)].length).toBeGreaterThan(ticks.length);
  });

  it('makes valid, unique ISRCs, UPCs and checksums', () => {
    expect(data.tracks.every((t) => ISRC_PATTERN.test(t.isrc))).toBe(true);
    expect(new Set(data.tracks.map((t) => t.isrc)).size).toBe(data.tracks.length);
    expect(data.albums.every((a) => isValidGtin(a.upc))).toBe(true);
    expect(new Set(data.albums.map((a) => a.upc)).size).toBe(data.albums.length);
    expect(new Set(data.tracks.map((t) => t.checksum_sha256)).size).toBe(data.tracks.length);
    expect(isValidGtin(upcFor(1))).toBe(true);
    expect(isValidGtin('036000291452')).toBe(true);
    expect(isValidGtin('036000291453')).toBe(false);
  });

  it('spreads users over about sixty countries with free and premium tiers', () => {
    expect(COUNTRIES.length).toBeGreaterThanOrEqual(60);
    const seen = new Set(data.users.map((u) => u.country));
    expect(seen.size).toBeGreaterThan(40);
    const premium = data.users.filter((u) => u.tier === 'premium').length / data.users.length;
    expect(premium).toBeGreaterThan(0.3);
    expect(premium).toBeLessThan(0.55);
    expect(data.subscriptions.length).toBe(data.users.filter((u) => u.tier === 'premium').length);
  });

  it('gives track popularity a Zipf shape: the top 1 % of tracks draws far more than 1 % of plays', () => {
    const plays = new Map<string, Set<string>>();
    for (const t of ticks) plays.set(t.track_id, (plays.get(t.track_id) ?? new Set()).add(t.play_id));
    const counts = [...plays.values()].map((s) => s.size).sort((a, b) => b - a);
    const total = counts.reduce((a, b) => a + b, 0);
    const top = counts.slice(0, Math.ceil(data.tracks.length / 100)).reduce((a, b) => a + b, 0);
    expect(top / total).toBeGreaterThan(0.1);
  });

  it("spaces a play's ticks 5 s apart, includes short skips, and keeps every tick within the month", () => {
    const byPlay = new Map<string, number[]>();
    for (const t of ticks)
      byPlay.set(t.play_id, [...(byPlay.get(t.play_id) ?? []), Date.parse(t.event_time)]);
    for (const times of byPlay.values())
      for (let i = 1; i < times.length; i++)
        expect((times[i] as number) - (times[i - 1] as number)).toBe(5000);
    const short = [...byPlay.values()].filter((t) => t.length < 6).length / byPlay.size;
    expect(short).toBeGreaterThan(0.15);
    const now = opts.now.getTime();
    expect(
      ticks.every((t) => Date.parse(t.event_time) <= now && Date.parse(t.event_time) > now - 31 * 86_400_000),
    ).toBe(true);
    expect(new Set(ticks.map((t) => t.event_id)).size).toBe(ticks.length);
  });

  it('includes bot-like users whose recent plays are rapid skips', () => {
    expect(data.botUserIds.length).toBeGreaterThan(0);
    const recentBotTicks = ticks.filter(
      (t) => data.botUserIds.includes(t.user_id) && Date.parse(t.event_time) > opts.now.getTime() - 600_000,
    );
    expect(recentBotTicks.length).toBeGreaterThan(0);
  });
});
