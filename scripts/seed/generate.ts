import { createHash } from 'node:crypto';
import type { PlayTick } from '../../domain/play-ticks/ticks';
import { isrcFor, upcFor } from './codes';
import { FastRandom, Random, Weighted, Zipf } from './random';

/**
 * Deterministic synthetic data: the same (scale, seed, now) gives the same rows, byte for byte.
 * Entities and plays use separate random streams, so --plays changes the ticks and nothing else.
 */

export const SCALES = {
  small: { artists: 120, albumsPerArtist: 2, tracksPerAlbum: 8, users: 1500, plays: 6000, campaigns: 24 },
  medium: {
    artists: 2000,
    albumsPerArtist: 2,
    tracksPerAlbum: 10,
    users: 40_000,
    plays: 150_000,
    campaigns: 120,
  },
  large: {
    artists: 10_000,
    albumsPerArtist: 2,
    tracksPerAlbum: 10,
    users: 400_000,
    plays: 500_000,
    campaigns: 400,
  },
} as const;
export type ScaleName = keyof typeof SCALES;

/** ~60 markets, weighted roughly by streaming audience; currency and monthly premium price each. */
const MARKETS: [string, number, string, string][] = [
  ['US', 30, 'USD', '11.99'],
  ['GB', 8, 'GBP', '11.99'],
  ['DE', 8, 'EUR', '10.99'],
  ['BR', 8, 'BRL', '21.90'],
  ['MX', 6, 'MXN', '129.00'],
  ['FR', 6, 'EUR', '11.12'],
  ['IN', 6, 'INR', '119.00'],
  ['JP', 5, 'JPY', '980'],
  ['ES', 4, 'EUR', '10.99'],
  ['IT', 4, 'EUR', '10.99'],
  ['CA', 4, 'CAD', '11.99'],
  ['AU', 3, 'AUD', '13.99'],
  ['NL', 3, 'EUR', '11.99'],
  ['SE', 3, 'SEK', '129.00'],
  ['PL', 3, 'PLN', '23.99'],
  ['AR', 3, 'ARS', '2199.00'],
  ['CO', 2, 'COP', '16900.00'],
  ['CL', 2, 'CLP', '5890'],
  ['TR', 2, 'TRY', '59.99'],
  ['ID', 2, 'IDR', '54990'],
  ['PH', 2, 'PHP', '169.00'],
  ['NO', 1, 'NOK', '129.00'],
  ['DK', 1, 'DKK', '109.00'],
  ['FI', 1, 'EUR', '11.99'],
  ['BE', 1, 'EUR', '11.99'],
  ['AT', 1, 'EUR', '10.99'],
  ['CH', 1, 'CHF', '13.95'],
  ['IE', 1, 'EUR', '11.99'],
  ['PT', 1, 'EUR', '7.99'],
  ['GR', 1, 'EUR', '7.99'],
  ['CZ', 1, 'CZK', '189.00'],
  ['HU', 1, 'HUF', '1890'],
  ['RO', 1, 'RON', '22.99'],
  ['ZA', 1, 'ZAR', '69.99'],
  ['NG', 1, 'NGN', '1300.00'],
  ['EG', 1, 'EGP', '59.99'],
  ['SA', 1, 'SAR', '21.99'],
  ['AE', 1, 'AED', '21.99'],
  ['IL', 1, 'ILS', '21.90'],
  ['KR', 1, 'KRW', '10900'],
  ['TW', 1, 'TWD', '149'],
  ['HK', 1, 'HKD', '68.00'],
  ['SG', 1, 'SGD', '10.98'],
  ['MY', 1, 'MYR', '16.90'],
  ['TH', 1, 'THB', '139.00'],
  ['VN', 1, 'VND', '59000'],
  ['NZ', 1, 'NZD', '16.99'],
  ['PE', 1, 'PEN', '18.90'],
  ['EC', 1, 'USD', '6.99'],
  ['UY', 1, 'UYU', '269.00'],
  ['CR', 1, 'CRC', '3490.00'],
  ['DO', 1, 'DOP', '269.00'],
  ['GT', 1, 'GTQ', '49.00'],
  ['UA', 1, 'UAH', '99.00'],
  ['KZ', 1, 'KZT', '1490.00'],
  ['MA', 1, 'MAD', '59.00'],
  ['KE', 1, 'KES', '389.00'],
  ['PK', 1, 'PKR', '299.00'],
  ['BD', 1, 'BDT', '199.00'],
  ['LK', 1, 'LKR', '599.00'],
];
export const COUNTRIES = MARKETS.map((m) => m[0]);
const market = new Map(MARKETS.map(([c, , cur, price]) => [c, { currency: cur, price }]));

export interface SeedOptions {
  scale: ScaleName;
  seed: number;
  /** Reference time: the generated month is the 30 days before it. */
  now: Date;
  plays?: number;
}

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** toISOString for the hot tick loop: the day part cached, the time of day from arithmetic. */
const TWO = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const dayPrefix = new Map<number, string>();
function tickIso(ms: number): string {
  const dayIndex = Math.floor(ms / DAY);
  let prefix = dayPrefix.get(dayIndex);
  if (prefix === undefined) {
    prefix = new Date(dayIndex * DAY).toISOString().slice(0, 11);
    dayPrefix.set(dayIndex, prefix);
  }
  const inDay = ms - dayIndex * DAY;
  const sec = Math.floor(inDay / 1000);
  const milli = inDay - sec * 1000;
  return (
    prefix +
    TWO[Math.floor(sec / 3600)]! +
    ':' +
    TWO[Math.floor(sec / 60) % 60]! +
    ':' +
    TWO[sec % 60]! +
    '.' +
    String(milli).padStart(3, '0') +
    'Z'
  );
}
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const money6 = (n: number) => n.toFixed(6);

export interface Catalog {
  artists: { artist_id: string; name: string; country: string; created_at: string }[];
  albums: { album_id: string; artist_id: string; title: string; upc: string; release_date: string }[];
  tracks: {
    track_id: string;
    album_id: string;
    artist_id: string;
    title: string;
    isrc: string;
    duration_ms: number;
    explicit: boolean;
    track_number: number;
    checksum_sha256: string;
    status: 'available';
    release_date: string;
    audio_object_key: string;
  }[];
}

export interface Dataset extends Catalog {
  users: {
    user_id: string;
    email: string;
    display_name: string;
    country: string;
    tier: 'free' | 'premium';
    created_at: string;
  }[];
  paymentMethods: {
    payment_method_id: string;
    user_id: string;
    provider: string;
    provider_token: string;
    brand: string;
    last4: string;
    exp_month: number;
    exp_year: number;
  }[];
  subscriptions: {
    subscription_id: string;
    user_id: string;
    plan: string;
    status: 'active';
    country: string;
    currency: string;
    price: string;
    current_period_start: string;
    current_period_end: string;
  }[];
  royaltyRates: {
    artist_id: string;
    country: string;
    rate_per_play: string;
    currency: string;
    rate_version: number;
    effective_from: string;
  }[];
  playlists: { playlist_id: string; owner_id: string; title: string; collaborative: boolean }[];
  playlistTracks: { playlist_id: string; position: number; track_id: string }[];
  follows: { follower_id: string; followee_id: string }[];
  advertisers: { advertiser_id: string; name: string; country: string }[];
  campaigns: {
    campaign_id: string;
    advertiser_id: string;
    name: string;
    campaign_type: 'promotional' | 'ad';
    promoted_artist_id: string | null;
    start_date: string;
    end_date: string;
    cpm: string;
    budget: string;
    currency: string;
  }[];
  sessions: {
    session_id: string;
    started_at: string;
    user_id: string;
    ip_country: string;
    device_id: string;
  }[];
  /** Bot-like users (rapid skips) and account sharers, for checking the analytics find them. */
  botUserIds: string[];
  sharerUserIds: string[];
}

export function generateDataset(opts: SeedOptions): Dataset {
  const scale = SCALES[opts.scale];
  const r = new Random(opts.seed);
  const now = opts.now.getTime();
  const countryOf = new Weighted(MARKETS.map(([c, w]) => [c, w] as const));

  const artists: Dataset['artists'] = [];
  const albums: Dataset['albums'] = [];
  const tracks: Dataset['tracks'] = [];
  for (let a = 0; a < scale.artists; a++) {
    const artist_id = r.uuid();
    const country = countryOf.sample(r);
    artists.push({
      artist_id,
      name: r.faker.music.artist(),
      country,
      created_at: iso(now - r.int(60, 3000) * DAY),
    });
    let trackOfArtist = 0;
    for (let b = 0; b < scale.albumsPerArtist; b++) {
      const album_id = r.uuid();
      const releaseMs = now - r.int(1, 3650) * DAY;
      const release_date = iso(releaseMs).slice(0, 10);
      albums.push({
        album_id,
        artist_id,
        title: r.faker.music.album(),
        upc: upcFor(albums.length + 1),
        release_date,
      });
      for (let t = 0; t < scale.tracksPerAlbum; t++) {
        const track_id = r.uuid();
        trackOfArtist++;
        tracks.push({
          track_id,
          album_id,
          artist_id,
          title: r.faker.music.songName(),
          isrc: isrcFor(country, a, new Date(releaseMs).getUTCFullYear(), trackOfArtist),
          duration_ms: r.int(95, 330) * 1000,
          explicit: r.chance(0.12),
          track_number: t + 1,
          checksum_sha256: sha256(`cadenza-seed:${track_id}`),
          status: 'available',
          release_date,
          audio_object_key: `audio/${track_id}/original.flac`,
        });
      }
    }
  }

  const users: Dataset['users'] = [];
  const paymentMethods: Dataset['paymentMethods'] = [];
  const subscriptions: Dataset['subscriptions'] = [];
  for (let u = 0; u < scale.users; u++) {
    const user_id = r.uuid();
    const country = countryOf.sample(r);
    // 6 % signed up in the last week (early-churn cohort), the rest over two years.
    const createdMs = r.chance(0.06) ? now - r.int(0, 6 * 24) * 3_600_000 : now - r.int(7, 730) * DAY;
    const tier = r.chance(0.42) ? 'premium' : 'free';
    users.push({
      user_id,
      email: `listener${u + 1}@example.test`,
      display_name: r.faker.person.fullName(),
      country,
      tier,
      created_at: iso(createdMs),
    });
    if (tier === 'premium') {
      const payment_method_id = r.uuid();
      paymentMethods.push({
        payment_method_id,
        user_id,
        provider: 'sandbox',
        provider_token: `pm_seed_${u + 1}`,
        brand: r.pick(['visa', 'mastercard', 'amex']),
        last4: String(r.int(0, 9999)).padStart(4, '0'),
        exp_month: r.int(1, 12),
        exp_year: r.int(2027, 2032),
      });
      const { currency, price } = market.get(country) as { currency: string; price: string };
      const periodStart = now - r.int(0, 29) * DAY;
      subscriptions.push({
        subscription_id: r.uuid(),
        user_id,
        plan: 'premium-monthly',
        status: 'active',
        country,
        currency,
        price,
        current_period_start: iso(periodStart),
        current_period_end: iso(periodStart + 30 * DAY),
      });
    }
  }

  // Rates per artist and market: a base rate per market, varied per artist (contracts differ).
  const royaltyRates: Dataset['royaltyRates'] = [];
  const effectiveFrom = iso(now - 400 * DAY).slice(0, 10);
  const baseRate = new Map(COUNTRIES.map((c) => [c, 0.002 + r.next() * 0.004]));
  for (const a of artists) {
    const factor = 0.8 + r.next() * 0.4;
    for (const c of COUNTRIES) {
      royaltyRates.push({
        artist_id: a.artist_id,
        country: c,
        rate_per_play: money6((baseRate.get(c) as number) * factor),
        currency: 'USD',
        rate_version: 1,
        effective_from: effectiveFrom,
      });
    }
  }

  const trackZipf = new Zipf(tracks.length);
  const playlists: Dataset['playlists'] = [];
  const playlistTracks: Dataset['playlistTracks'] = [];
  for (const u of users) {
    if (!r.chance(0.3)) continue;
    const playlist_id = r.uuid();
    playlists.push({
      playlist_id,
      owner_id: u.user_id,
      title: `${r.faker.word.adjective()} ${r.faker.music.genre()}`,
      collaborative: r.chance(0.1),
    });
    const size = r.int(5, 40);
    for (let p = 0; p < size; p++)
      playlistTracks.push({
        playlist_id,
        position: p,
        track_id: (tracks[trackZipf.sample(r)] as Dataset['tracks'][number]).track_id,
      });
  }

  const follows: Dataset['follows'] = [];
  const userZipf = new Zipf(users.length, 1.2);
  for (const u of users) {
    const seen = new Set<string>();
    for (let f = r.int(0, 12); f > 0; f--) {
      const followee = (users[userZipf.sample(r)] as Dataset['users'][number]).user_id;
      if (followee === u.user_id || seen.has(followee)) continue;
      seen.add(followee);
      follows.push({ follower_id: u.user_id, followee_id: followee });
    }
  }

  const advertisers: Dataset['advertisers'] = [];
  for (let i = 0; i < Math.max(4, scale.campaigns / 4); i++)
    advertisers.push({ advertiser_id: r.uuid(), name: r.faker.company.name(), country: countryOf.sample(r) });
  const campaigns: Dataset['campaigns'] = [];
  for (let i = 0; i < scale.campaigns; i++) {
    const promotional = r.chance(0.4);
    const startMs = now - r.int(2, 30) * DAY;
    campaigns.push({
      campaign_id: r.uuid(),
      advertiser_id: r.pick(advertisers).advertiser_id,
      name: `${r.faker.commerce.productAdjective()} ${promotional ? 'release push' : 'brand spot'}`,
      campaign_type: promotional ? 'promotional' : 'ad',
      promoted_artist_id: promotional
        ? (artists[trackZipf.sample(r) % artists.length] as Dataset['artists'][number]).artist_id
        : null,
      start_date: iso(startMs).slice(0, 10),
      end_date: iso(Math.min(now, startMs + r.int(3, 14) * DAY)).slice(0, 10),
      cpm: r.pick(['2.5000', '4.0000', '6.7500', '9.9900']),
      budget: `${r.int(1, 50) * 1000}.00`,
      currency: 'USD',
    });
  }

  // Sessions: most users stay in their country; ~2 % share the account across 3–5 countries.
  const sessions: Dataset['sessions'] = [];
  const sharerUserIds: string[] = [];
  for (const u of users) {
    const sharer = r.chance(0.02);
    if (sharer) sharerUserIds.push(u.user_id);
    const places = sharer
      ? [u.country, ...Array.from({ length: r.int(2, 4) }, () => r.pick(COUNTRIES))]
      : [u.country];
    for (let s = sharer ? r.int(6, 12) : r.int(1, 8); s > 0; s--) {
      sessions.push({
        session_id: r.uuid(),
        started_at: iso(now - r.int(60, 29 * 24 * 60) * 60_000),
        user_id: u.user_id,
        ip_country: sharer ? (places[s % places.length] as string) : u.country,
        device_id: `dev-${u.user_id.slice(0, 8)}-${r.int(1, 3)}`,
      });
    }
  }
  const botUserIds = users.filter((_, i) => i % 200 === 7).map((u) => u.user_id);
  return {
    artists,
    albums,
    tracks,
    users,
    paymentMethods,
    subscriptions,
    royaltyRates,
    playlists,
    playlistTracks,
    follows,
    advertisers,
    campaigns,
    sessions,
    botUserIds,
    sharerUserIds,
  };
}

/** A generated tick is exactly what a client sends (lib/play-ticks). */
export type Tick = PlayTick;

/**
 * A month of play-ticks, one play at a time: Zipf-popular tracks, Zipf-active users, 5 s between
 * ticks; a quarter of plays are skips under 30 s; bot-like users skip rapidly, some in the last minutes.
 */
export function* generateTicks(data: Dataset, opts: SeedOptions): Generator<Tick> {
  const r = new FastRandom(opts.seed + 1_000_003);
  const now = opts.now.getTime();
  const plays = opts.plays ?? SCALES[opts.scale].plays;
  const trackZipf = new Zipf(data.tracks.length);
  const userZipf = new Zipf(data.users.length, 0.9);
  const bots = new Set(data.botUserIds);
  const userIndex = new Map(data.users.map((u, i) => [u.user_id, i]));
  for (let p = 0; p < plays; p++) {
    const botTurn = data.botUserIds.length > 0 && p % 50 === 0;
    const user = botTurn
      ? (data.users[userIndex.get(r.pick(data.botUserIds)) as number] as Dataset['users'][number])
      : (data.users[userZipf.sample(r)] as Dataset['users'][number]);
    const track = data.tracks[trackZipf.sample(r)] as Dataset['tracks'][number];
    const isBot = bots.has(user.user_id);
    // Bots: a burst of 1–2-tick plays, half of them within the last ten minutes.
    const startMs =
      isBot && r.chance(0.5) ? now - r.int(15, 540) * 1000 : now - r.int(600, 30 * 86_400) * 1000;
    const full = Math.floor(track.duration_ms / 5000);
    const ticks = isBot ? r.int(1, 2) : r.chance(0.25) ? r.int(1, 5) : r.chance(0.7) ? full : r.int(6, full);
    const play_id = r.uuid();
    const device_id = `dev-${user.user_id.slice(0, 8)}-1`;
    for (let k = 1; k <= ticks; k++) {
      const at = startMs + k * 5000;
      if (at > now) break;
      yield {
        event_id: r.uuid(),
        play_id,
        user_id: user.user_id,
        track_id: track.track_id,
        country: user.country,
        device_id,
        position_ms: k * 5000,
        event_time: tickIso(at),
      };
    }
  }
}
