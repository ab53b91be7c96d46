import { randomUUID } from 'node:crypto';
import { sql } from 'slonik';
import { z } from 'zod';
import { royaltySettlement } from '../../workflows';
import {
  TASK_QUEUE,
  settlementProgress,
  settlementWorkflowId,
  type SettlementInput,
} from '../../workflows/royalties/contract';
import { testConfig } from '../helpers/env';
import {
  addArtist,
  insertTicks,
  publishRates,
  readStatement,
  royaltiesStores,
  royaltiesWorker,
  type RoyaltiesStores,
  type TestTick,
} from '../helpers/royalties';

/**
 * The oracle: a month of generated plays with every edge case the issue lists goes through the real
 * workflow on real stores, and the statement must equal an independent computation in this file (plain
 * TypeScript over the generated ticks — not the project's SQL) byte for byte, hence to the cent. Then the
 * ticks are delivered again after the cut-off, merged, and partly erased: same-pins re-runs still
 * reproduce the statement from the snapshot, and say whether ClickHouse still agrees.
 */
jest.setTimeout(240_000);

const MONTH = '2026-10';
const FROM = Date.parse('2026-10-01T00:00:00Z');
const TO = Date.parse('2026-11-01T00:00:00Z');
const CUTOFF = Date.parse('2026-11-01T02:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

/** mulberry32: a small seeded generator, so the month is the same on every run. */
function rng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface RateRow {
  artistId: string;
  country: string;
  rate: string;
  currency: string;
  effectiveFrom: string;
  effectiveTo: string | null;
}

describe('royalty settlement against an independent oracle', () => {
  let s: RoyaltiesStores;
  let w: Awaited<ReturnType<typeof royaltiesWorker>>;
  const ticks: TestTick[] = [];
  const artistOf = new Map<string, string>();
  let rates: RateRow[] = [];
  const T: Record<string, string> = {};
  const unknownTrack = randomUUID();
  const midnightListener = randomUUID();
  const random = rng(16);

  /** One play: `n` ticks 5 s apart from `start`; `ingest` says when each reached ClickHouse. */
  function play(
    track: string,
    country: string,
    start: number,
    n: number,
    opts: {
      user?: string;
      ingest?: (k: number, at: number) => number;
      copies?: (k: number, at: number) => number[];
    } = {},
  ): string {
    const playId = randomUUID();
    const user = opts.user ?? randomUUID();
    for (let k = 1; k <= n; k++) {
      const at = start + k * 5000;
      const eventId = randomUUID();
      const first = opts.ingest ? opts.ingest(k, at) : at + 2000;
      for (const ingested of [first, ...(opts.copies?.(k, at) ?? [])]) {
        ticks.push({
          eventId,
          playId,
          userId: user,
          trackId: track,
          country,
          positionMs: k * 5000,
          eventTime: iso(at),
          ingestedAt: iso(ingested),
        });
      }
    }
    return playId;
  }

  beforeAll(async () => {
    s = await royaltiesStores(testConfig());
    const a = await addArtist(s.pool, 3);
    const b = await addArtist(s.pool, 2);
    const c = await addArtist(s.pool, 1);
    const d = await addArtist(s.pool, 1);
    [T.A1, T.A2, T.A3] = a.trackIds as [string, string, string];
    [T.B1, T.B2] = b.trackIds as [string, string];
    T.C1 = c.trackIds[0] as string;
    T.D1 = d.trackIds[0] as string;
    for (const [artist, tracks] of [a, b, c, d].map((x) => [x.artistId, x.trackIds] as const))
      for (const t of tracks) artistOf.set(t, artist);
    const rate = (
      artistId: string,
      country: string,
      r: string,
      currency: string,
      from = '2020-01-01',
      to: string | null = null,
    ) => ({ artistId, country, rate: r, currency, effectiveFrom: from, effectiveTo: to }) satisfies RateRow;
    rates = [
      rate(a.artistId, 'DE', '0.003333', 'EUR'),
      rate(a.artistId, 'US', '0.004000', 'USD'),
      rate(a.artistId, 'GB', '0.002777', 'GBP'),
      // A rate change in the same currency: the later one is in force.
      rate(a.artistId, 'SE', '0.002000', 'EUR'),
      rate(a.artistId, 'SE', '0.002500', 'EUR', '2026-09-01'),
      // Two rates in force in two currencies: a currency mismatch.
      rate(a.artistId, 'FR', '0.003000', 'EUR'),
      rate(a.artistId, 'FR', '0.003500', 'USD', '2026-06-01'),
      // A contract that ended on the month's first day: no rate in force.
      rate(a.artistId, 'NO', '0.004000', 'EUR', '2020-01-01', '2026-10-01'),
      rate(b.artistId, 'DE', '0.001234', 'EUR'),
      rate(b.artistId, 'US', '0.005555', 'USD'),
      rate(c.artistId, 'US', '0.010000', 'USD'),
      rate(d.artistId, 'US', '0.010000', 'USD'),
    ];
    await publishRates(s.pool, 1, rates);

    // Ordinary plays: random tracks, countries, lengths (a quarter under 30 s), some ticks delivered twice.
    const tracks = [T.A1, T.A2, T.A3, T.B1, T.B2] as string[];
    const countries = ['DE', 'US', 'GB', 'SE'];
    for (let i = 0; i < 400; i++) {
      const track = tracks[Math.floor(random() * tracks.length)] as string;
      const country = countries[Math.floor(random() * countries.length)] as string;
      const start = FROM + Math.floor(random() * (TO - FROM - 3_600_000));
      const n = random() < 0.25 ? 1 + Math.floor(random() * 5) : 6 + Math.floor(random() * 25);
      const twice = random() < 0.1 ? 1 + Math.floor(random() * n) : 0;
      play(track, country, start, n, {
        ingest: (_k, at) => at + Math.floor(random() * 20_000),
        copies: (k, at) => (k === twice ? [at + 30_000] : []),
      });
    }
    const oct = (d: string) => Date.parse(`2026-10-${d}Z`);
    // Each catalogued track has had its 1,000 streams in June, but D1: 994 there and 5 in October is 999.
    const june = Date.parse('2026-06-10T00:00:00Z');
    for (const track of [T.A1, T.A2, T.A3, T.B1, T.B2, unknownTrack] as string[])
      for (let i = 0; i < 1000; i++) play(track, 'US', june + i * 60_000, 6);
    play(T.A1 as string, 'DE', oct('05T10:00:00'), 5); // 29.9 s: five ticks, not royalty-bearing
    play(T.A1 as string, 'DE', oct('05T11:00:00'), 6); // exactly 30 s
    play(T.A2 as string, 'US', oct('10T23:59:40'), 8, { user: midnightListener }); // across midnight: one play
    play(T.A2 as string, 'US', Date.parse('2026-09-30T23:59:50Z'), 8); // began in September
    play(T.A3 as string, 'GB', oct('31T23:59:40'), 8); // began in October, ends in November
    play(T.A1 as string, 'US', oct('12T08:00:00'), 6, {
      ingest: (k, at) => (k === 6 ? CUTOFF + 3_600_000 : at + 1000),
    });
    play(T.A1 as string, 'US', oct('12T09:00:00'), 7, {
      ingest: (k, at) => (k === 7 ? CUTOFF + 3_600_000 : at + 1000),
    });
    play(T.A1 as string, 'US', oct('31T20:00:00'), 6, { ingest: () => CUTOFF + 86_400_000 }); // arrived too late
    play(T.A1 as string, 'US', oct('13T09:00:00'), 6, {
      copies: (k) =>
        k === 3 ? [oct('13T09:00:30'), oct('13T09:00:40')] : k === 6 ? [CUTOFF + 7_200_000] : [],
    });
    for (let i = 0; i < 3; i++) play(T.A1 as string, 'FR', oct(`14T0${i}:00:00`), 6); // currency mismatch
    for (let i = 0; i < 2; i++) play(T.B1 as string, 'GB', oct(`15T0${i}:00:00`), 6); // no rate for B in GB
    play(unknownTrack, 'US', oct('16T10:00:00'), 6); // a track the catalog does not know
    play(T.A1 as string, 'NO', oct('16T11:00:00'), 6); // the contract ended
    // A listener skipping ten times inside ten minutes is a bot for the month; nine times is not.
    const bot = randomUUID();
    const almost = randomUUID();
    for (let i = 0; i < 10; i++)
      play(T.B2 as string, 'DE', oct('20T10:00:00') + i * 30_000, 1 + (i % 2), { user: bot });
    for (let i = 0; i < 3; i++) play(T.A2 as string, 'DE', oct(`21T0${i}:00:00`), 12, { user: bot });
    for (let i = 0; i < 9; i++)
      play(T.B2 as string, 'DE', oct('22T10:00:00') + i * 30_000, 1 + (i % 2), { user: almost });
    play(T.A2 as string, 'DE', oct('23T10:00:00'), 12, { user: almost });
    // 1,000 royalty-bearing streams in twelve months earn; 999 do not.
    for (let i = 0; i < 995; i++) play(T.C1 as string, 'US', june + i * 60_000, 6);
    for (let i = 0; i < 994; i++) play(T.D1 as string, 'US', june + i * 60_000, 6);
    for (let i = 0; i < 5; i++) {
      play(T.C1 as string, 'US', oct(`2${i}T12:00:00`), 6);
      play(T.D1 as string, 'US', oct(`2${i}T12:00:00`), 6);
    }
    await insertTicks(
      s.clickhouse,
      ticks.filter((t) => Date.parse(t.ingestedAt) < CUTOFF + 86_400_000 * 2),
    );
    w = await royaltiesWorker(s.config, s.deps);
    await w.clearMonth(MONTH);
  });
  afterAll(async () => {
    await w?.stop();
    await s?.drop();
  });

  /** The independent computation: first ingestion, plays, month, bots, threshold, rates, cents, files. */
  function oracle(all: readonly TestTick[]) {
    const firstIngested = new Map<string, number>();
    for (const t of all) {
      const at = Date.parse(t.ingestedAt);
      firstIngested.set(t.eventId, Math.min(at, firstIngested.get(t.eventId) ?? Infinity));
    }
    const plays = new Map<
      string,
      { track: string; country: string; user: string; started: number; events: Set<string> }
    >();
    for (const t of all) {
      if ((firstIngested.get(t.eventId) as number) >= CUTOFF) continue;
      const p = plays.get(t.playId) ?? {
        track: t.trackId,
        country: t.country,
        user: t.userId,
        started: Infinity,
        events: new Set<string>(),
      };
      p.events.add(t.eventId);
      p.started = Math.min(p.started, Date.parse(t.eventTime));
      plays.set(t.playId, p);
    }
    const inMonth = [...plays.values()].filter((p) => p.started >= FROM && p.started < TO);
    const bursts = new Map<string, number>();
    for (const p of inMonth.filter((p) => p.events.size < 3)) {
      const key = `${p.user}|${Math.floor(p.started / 1000 / 600)}`;
      bursts.set(key, (bursts.get(key) ?? 0) + 1);
    }
    const bots = new Set([...bursts].filter(([, n]) => n >= 10).map(([k]) => k.split('|')[0]));
    const trailingFrom = Date.parse('2025-11-01T00:00:00Z');
    const trailing = new Map<string, number>();
    for (const p of plays.values())
      if (p.events.size >= 6 && p.started >= trailingFrom && p.started < TO)
        trailing.set(p.track, (trailing.get(p.track) ?? 0) + 1);
    const lines = new Map<
      string,
      { track: string; country: string; plays: number; bot: number; below: number }
    >();
    for (const p of inMonth.filter((p) => p.events.size >= 6)) {
      const key = `${p.track}|${p.country}`;
      const l = lines.get(key) ?? { track: p.track, country: p.country, plays: 0, bot: 0, below: 0 };
      if ((trailing.get(p.track) ?? 0) < 1000) l.below++;
      else if (bots.has(p.user)) l.bot++;
      else l.plays++;
      lines.set(key, l);
    }
    const day = (d: string) => Date.parse(`${d}T00:00:00Z`);
    const held: { kind: string; subject: string; plays: number }[] = [];
    const priced: {
      artist: string;
      track: string;
      country: string;
      plays: number;
      micros: bigint;
      rate: string;
      currency: string;
    }[] = [];
    for (const l of lines.values()) {
      if (l.plays === 0) continue;
      const artist = artistOf.get(l.track);
      if (!artist) {
        held.push({ kind: 'unknown_track', subject: l.track, plays: l.plays });
        continue;
      }
      const inForce = rates.filter(
        (r) =>
          r.artistId === artist &&
          r.country === l.country &&
          day(r.effectiveFrom) <= FROM &&
          (r.effectiveTo === null || day(r.effectiveTo) > FROM),
      );
      const currencies = new Set(inForce.map((r) => r.currency));
      if (currencies.size !== 1) {
        const kind = currencies.size === 0 ? 'missing_rate' : 'currency_mismatch';
        const h = held.find((x) => x.kind === kind && x.subject === `${artist}/${l.country}`);
        if (h) h.plays += l.plays;
        else held.push({ kind, subject: `${artist}/${l.country}`, plays: l.plays });
        continue;
      }
      const r = inForce.sort((x, y) => (x.effectiveFrom < y.effectiveFrom ? 1 : -1))[0] as RateRow;
      const [whole, frac = ''] = r.rate.split('.');
      priced.push({
        artist,
        track: l.track,
        country: l.country,
        plays: l.plays,
        micros: BigInt(l.plays) * BigInt(`${whole}${frac.padEnd(6, '0')}`),
        rate: r.rate,
        currency: r.currency,
      });
    }
    // Cents by largest remainder, per artist and currency, written out as the statement's files.
    const money = (units: bigint, scale: number) => {
      const s = units.toString().padStart(scale + 1, '0');
      return `${s.slice(0, s.length - scale)}.${s.slice(s.length - scale)}`;
    };
    const files = new Map<string, string>();
    const totals = new Map<string, { plays: number; cents: bigint }>();
    for (const artist of [...new Set(priced.map((p) => p.artist))].sort()) {
      const mine = priced
        .filter((p) => p.artist === artist)
        .sort((x, y) => (x.track < y.track ? -1 : x.track > y.track ? 1 : x.country < y.country ? -1 : 1));
      const cents = new Map<(typeof mine)[number], bigint>();
      const footer: string[] = [];
      for (const currency of [...new Set(mine.map((p) => p.currency))].sort()) {
        const group = mine.filter((p) => p.currency === currency);
        const sum = group.reduce((acc, p) => acc + p.micros, 0n);
        const total = sum / 10_000n + (sum % 10_000n >= 5_000n ? 1n : 0n);
        let left = total;
        for (const p of group) {
          cents.set(p, p.micros / 10_000n);
          left -= p.micros / 10_000n;
        }
        const byRemainder = [...group].sort((x, y) => {
          const rx = x.micros % 10_000n;
          const ry = y.micros % 10_000n;
          return rx === ry ? group.indexOf(x) - group.indexOf(y) : rx > ry ? -1 : 1;
        });
        for (const p of byRemainder.slice(0, Number(left))) cents.set(p, (cents.get(p) as bigint) + 1n);
        const plays = group.reduce((n, p) => n + p.plays, 0);
        footer.push(`total,,,${plays},,${currency},${money(sum, 6)},${money(total, 2)}\n`);
        const t = totals.get(currency) ?? { plays: 0, cents: 0n };
        totals.set(currency, { plays: t.plays + plays, cents: t.cents + total });
      }
      files.set(
        `artists/${artist}.csv`,
        'kind,reference,country,plays,rate_per_play,currency,exact_amount,amount\n' +
          mine
            .map(
              (p) =>
                `play,${p.track},${p.country},${p.plays},${p.rate},${p.currency},${money(p.micros, 6)},${money(cents.get(p) as bigint, 2)}\n`,
            )
            .join('') +
          footer.join(''),
      );
    }
    const excluded = {
      botPlays: [...lines.values()].reduce((n, l) => n + l.bot, 0),
      belowThresholdPlays: [...lines.values()].reduce((n, l) => n + l.below, 0),
    };
    return { files, totals, held, excluded };
  }

  const input = (rerun: number): SettlementInput => ({
    month: MONTH,
    rerun,
    startedBy: 'finance-alice',
    shards: 3,
    latenessHours: 2,
    reminderDays: 3,
  });

  async function runToRest(rerun: number) {
    const handle = await w.client.workflow.start(royaltySettlement, {
      taskQueue: TASK_QUEUE,
      workflowId: settlementWorkflowId(MONTH, rerun),
      args: [input(rerun)],
    });
    for (let i = 0; i < 600; i++) {
      const p = await handle.query(settlementProgress);
      if (!['starting', 'running'].includes(p.status)) return { handle, progress: p };
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('the run did not come to rest');
  }

  const runRow = (runId: string) =>
    s.pool.one(
      sql.type(
        z.object({
          status: z.string(),
          kind: z.string(),
          statement_key: z.string(),
          statement_sha256: z.string(),
          reproduced: z.boolean().nullable(),
          reaggregation: z.any(),
        }),
      )`SELECT status, kind, statement_key, statement_sha256, reproduced, reaggregation FROM settlement_runs WHERE run_id = ${runId}`,
    );

  let first: { runId: string; sha256: string };

  it('equals the oracle to the cent: every artist file, the totals, the exclusions and what holds the run', async () => {
    const { progress } = await runToRest(0);
    expect(progress.status).toBe('held');
    const run = await runRow(progress.runId as string);
    const statement = await readStatement(s.deps.minio, s.deps.bucket, run.statement_key);
    expect(statement.sha256).toBe(run.statement_sha256);
    const expected = oracle(ticks);

    const artistFiles = [...statement.files.keys()].filter((f) => f.startsWith('artists/')).sort();
    expect(artistFiles).toEqual([...expected.files.keys()].sort());
    for (const [name, body] of expected.files)
      expect({ name, body: statement.files.get(name) }).toEqual({ name, body });

    const summary = JSON.parse(statement.files.get('summary.json') as string) as {
      currencies: { currency: string; plays: number; amount: string }[];
      excluded: { botPlays: number; belowThresholdPlays: number };
      held: { kind: string; subject: string; plays: number }[];
      pins: { ingestionCutoff: string; rateVersion: number; policyVersion: number };
    };
    expect(summary.pins).toMatchObject({ ingestionCutoff: iso(CUTOFF), rateVersion: 1, policyVersion: 1 });
    expect(summary.currencies.map((c) => c.currency)).toEqual(['EUR', 'GBP', 'USD']);
    for (const c of summary.currencies) {
      const t = expected.totals.get(c.currency) as { plays: number; cents: bigint };
      expect({ currency: c.currency, plays: c.plays, amount: c.amount }).toEqual({
        currency: c.currency,
        plays: t.plays,
        amount: `${t.cents / 100n}.${String(t.cents % 100n).padStart(2, '0')}`,
      });
    }
    expect(summary.excluded).toEqual(expected.excluded);
    expect(summary.excluded.botPlays).toBe(3);
    expect(summary.excluded.belowThresholdPlays).toBe(5);
    expect(summary.held.map(({ kind, subject, plays }) => ({ kind, subject, plays }))).toEqual(
      [...expected.held].sort((a, b) =>
        a.kind === b.kind ? (a.subject < b.subject ? -1 : 1) : a.kind < b.kind ? -1 : 1,
      ),
    );
    expect(new Set(summary.held.map((h) => h.kind))).toEqual(
      new Set(['currency_mismatch', 'missing_rate', 'unknown_track']),
    );
    first = { runId: progress.runId as string, sha256: run.statement_sha256 };
  });

  it('reproduces the statement byte for byte after ticks are delivered again after the cut-off and merged', async () => {
    // Every tick of a tenth of the plays arrives again a day after the cut-off; then ClickHouse merges.
    const again = ticks
      .filter((_, i) => i % 10 === 0)
      .map((t) => ({ ...t, ingestedAt: iso(CUTOFF + 86_400_000) }));
    await insertTicks(s.clickhouse, again);
    await s.clickhouse.command({ query: 'OPTIMIZE TABLE play_ticks FINAL' });
    await s.clickhouse.command({ query: 'OPTIMIZE TABLE plays FINAL' });
    // The raw table kept each tick's first copy.
    const [kept] = await (
      await s.clickhouse.query({
        query: `SELECT toString(ingested_at) AS at FROM play_ticks WHERE event_id = toUUID('${again[0]?.eventId}')`,
        format: 'JSONEachRow',
      })
    ).json<{ at: string }>();
    expect(kept?.at).toBe((ticks[0] as TestTick).ingestedAt.slice(0, 19).replace('T', ' '));

    const { handle } = await runToRest(1);
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'verified', kind: 'verification', reproduced: true });
    expect(result.statementSha256).toBe(first.sha256);
    const run = await runRow(result.runId as string);
    expect(run.reaggregation).toMatchObject({ matches: true });
    // The oracle over every copy, late ones included, still gives the first run's files.
    const statement = await readStatement(s.deps.minio, s.deps.bucket, run.statement_key);
    expect(statement.sha256).toBe(first.sha256);
  });

  it('after plays are erased from ClickHouse, still reproduces from the snapshot — and says ClickHouse now differs', async () => {
    const erased = midnightListener;
    await s.clickhouse.command({
      query: `ALTER TABLE play_ticks DELETE WHERE user_id = toUUID('${erased}')`,
    });
    await s.clickhouse.command({ query: `ALTER TABLE plays DELETE WHERE user_id = toUUID('${erased}')` });
    for (let i = 0; i < 100; i++) {
      const [pending] = await (
        await s.clickhouse.query({
          query: `SELECT count() AS n FROM system.mutations WHERE database = currentDatabase() AND is_done = 0`,
          format: 'JSONEachRow',
        })
      ).json<{ n: string }>();
      if (Number(pending?.n) === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const { handle } = await runToRest(2);
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'verified', reproduced: true, statementSha256: first.sha256 });
    const run = await runRow(result.runId as string);
    expect(run.reaggregation).toMatchObject({ matches: false });
    expect(run.reaggregation.linesDiffering).toBeGreaterThan(0);
    expect(run.reaggregation.playsNow).toBeLessThan(run.reaggregation.playsFrozen);
  });
});
