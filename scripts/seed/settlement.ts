import { allocateLargestRemainder, exactAmount } from '../../domain/royalties/allocation';
import { fromUnits, toUnits } from '../../domain/royalties/money';
import type { Dataset, Tick } from './generate';

/**
 * A past, approved settlement for the seeded month — imported, as if settled before Cadenza — computed
 * in memory from the generated ticks (independently of ClickHouse), so query 5B has payouts to check:
 * with a few artists paid 10–20 % too much on purpose, the divergences 5B must find. Amounts follow the
 * settlement's one rounding rule (domain/royalties/allocation.ts): per artist and currency, the sum of
 * the exact line amounts rounded half up to the cent.
 */

export interface SeedSettlement {
  month: string;
  from: Date;
  to: Date;
  /** Royalty-bearing plays per artist|track|country. */
  plays: Map<string, number>;
  payouts: {
    artist_id: string;
    currency: string;
    plays: number;
    lines: number;
    exact: string;
    amount: string;
  }[];
  perturbedArtistIds: string[];
}

const ROYALTY_MIN_TICKS = 6;

export class SettlementAccumulator {
  private readonly playsById = new Map<
    string,
    { track: string; country: string; first: number; ticks: number }
  >();
  observe(t: Tick): void {
    const at = Date.parse(t.event_time);
    const p = this.playsById.get(t.play_id);
    if (!p) this.playsById.set(t.play_id, { track: t.track_id, country: t.country, first: at, ticks: 1 });
    else {
      p.ticks++;
      if (at < p.first) p.first = at;
    }
  }

  settle(data: Dataset, now: Date): SeedSettlement {
    const anchor = new Date(now.getTime() - 15 * 86_400_000);
    const from = new Date(Date.UTC(anchor.getUTCFullYear(), anchor.getUTCMonth(), 1));
    const to = new Date(Date.UTC(anchor.getUTCFullYear(), anchor.getUTCMonth() + 1, 1));
    const artistOf = new Map(data.tracks.map((t) => [t.track_id, t.artist_id]));
    const plays = new Map<string, number>();
    for (const p of this.playsById.values()) {
      if (p.ticks < ROYALTY_MIN_TICKS || p.first < from.getTime() || p.first >= to.getTime()) continue;
      const key = `${artistOf.get(p.track)}|${p.track}|${p.country}`;
      plays.set(key, (plays.get(key) ?? 0) + 1);
    }
    const rate = new Map(
      data.royaltyRates.map((r) => [
        `${r.artist_id}|${r.country}`,
        { micros: toUnits(r.rate_per_play, 6), currency: r.currency },
      ]),
    );
    // Lines per artist and currency, in the settlement's order (track, then country).
    const groups = new Map<string, { artist: string; currency: string; plays: number; exact: bigint[] }>();
    for (const key of [...plays.keys()].sort()) {
      const [artist, , country] = key.split('|') as [string, string, string];
      const r = rate.get(`${artist}|${country}`);
      if (!r) continue;
      const g = groups.get(`${artist}|${r.currency}`) ?? {
        artist,
        currency: r.currency,
        plays: 0,
        exact: [],
      };
      const n = plays.get(key) as number;
      g.plays += n;
      g.exact.push(exactAmount(n, r.micros));
      groups.set(`${artist}|${r.currency}`, g);
    }
    const perturbedArtistIds: string[] = [];
    let eligible = 0;
    const payouts = [...groups.values()]
      .sort((a, b) => (a.artist < b.artist ? -1 : a.artist > b.artist ? 1 : a.currency < b.currency ? -1 : 1))
      .map((g) => {
        let cents = allocateLargestRemainder(g.exact).total;
        // Every fifth artist owed at least 20 cents is paid 10–20 % too much (so rounding cannot hide it).
        if (cents >= 20n && eligible++ % 5 === 2) {
          cents = (cents * BigInt(110 + (eligible % 11))) / 100n;
          perturbedArtistIds.push(g.artist);
        }
        return {
          artist_id: g.artist,
          currency: g.currency,
          plays: g.plays,
          lines: g.exact.length,
          exact: fromUnits(
            g.exact.reduce((s, e) => s + e, 0n),
            6,
          ),
          amount: fromUnits(cents, 2),
        };
      });
    return { month: from.toISOString().slice(0, 10), from, to, plays, payouts, perturbedArtistIds };
  }
}

export function* tap<T>(items: Iterable<T>, f: (item: T) => void): Generator<T> {
  for (const item of items) {
    f(item);
    yield item;
  }
}
