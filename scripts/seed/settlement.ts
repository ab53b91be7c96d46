import type { Dataset, Tick } from './generate';

/**
 * A past, approved settlement for the seeded month, computed in memory from the generated ticks
 * (independently of ClickHouse), so query 5B has payouts to check — with a few artists paid
 * 10–20 % too much on purpose, the divergences 5B must find.
 */

export interface SeedSettlement {
  month: string;
  from: Date;
  to: Date;
  /** Royalty-bearing plays per artist|track|country. */
  plays: Map<string, number>;
  payouts: { artist_id: string; currency: string; plays: number; amount: string }[];
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
      data.royaltyRates.map((r) => [`${r.artist_id}|${r.country}`, BigInt(r.rate_per_play.replace('.', ''))]),
    );
    const perArtist = new Map<string, { micros: bigint; plays: number }>();
    for (const [key, n] of plays) {
      const [artist, , country] = key.split('|') as [string, string, string];
      const a = perArtist.get(artist) ?? { micros: 0n, plays: 0 };
      a.micros += BigInt(n) * (rate.get(`${artist}|${country}`) ?? 0n);
      a.plays += n;
      perArtist.set(artist, a);
    }
    const perturbedArtistIds: string[] = [];
    let eligible = 0;
    const payouts = [...perArtist.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([artist_id, a]) => {
        let cents = (a.micros + 5000n) / 10000n; // micro-units → cents, half up
        // Every fifth artist owed at least 20 cents is paid 10–20 % too much (so rounding cannot hide it).
        if (cents >= 20n && eligible++ % 5 === 2) {
          cents = (cents * BigInt(110 + (eligible % 11))) / 100n;
          perturbedArtistIds.push(artist_id);
        }
        return {
          artist_id,
          currency: 'USD',
          plays: a.plays,
          amount: `${cents / 100n}.${String(cents % 100n).padStart(2, '0')}`,
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
