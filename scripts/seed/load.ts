import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Producer } from 'kafkajs';
import { sql, type DatabasePool } from 'slonik';
import { TICK_FIELDS } from '../../domain/play-ticks/ticks';
import type { Dataset, Tick } from './generate';
import type { SeedSettlement } from './settlement';

type Column = readonly [name: string, pgType: string];

/** Inserts rows in batches with unnest (one statement per batch); re-seeding skips rows already there. */
export async function insertRows<R extends Record<string, unknown>>(
  pool: DatabasePool,
  table: string,
  columns: readonly Column[],
  rows: readonly R[],
  onBatch: (n: number) => void = () => undefined,
  batchSize = 5000,
): Promise<void> {
  const names = sql.join(
    columns.map(([n]) => sql.identifier([n])),
    sql.fragment`, `,
  );
  for (let i = 0; i < rows.length; i += batchSize) {
    const batch = rows.slice(i, i + batchSize);
    const tuples = batch.map((row) => columns.map(([n]) => row[n] as never));
    await pool.query(sql.unsafe`
      INSERT INTO ${sql.identifier([table])} (${names})
      SELECT * FROM ${sql.unnest(
        tuples,
        columns.map(([, t]) => t),
      )}
      ON CONFLICT DO NOTHING`);
    onBatch(batch.length);
  }
}

/** The PostgreSQL side of a dataset, in foreign-key order. */
export const POSTGRES_TABLES: {
  table: string;
  rows: (d: Dataset) => Record<string, unknown>[];
  columns: Column[];
}[] = [
  {
    table: 'artists',
    rows: (d) => d.artists,
    columns: [
      ['artist_id', 'uuid'],
      ['name', 'text'],
      ['country', 'bpchar'],
      ['created_at', 'timestamptz'],
    ],
  },
  {
    table: 'albums',
    rows: (d) => d.albums,
    columns: [
      ['album_id', 'uuid'],
      ['artist_id', 'uuid'],
      ['title', 'text'],
      ['upc', 'text'],
      ['release_date', 'date'],
    ],
  },
  {
    table: 'tracks',
    rows: (d) => d.tracks,
    columns: [
      ['track_id', 'uuid'],
      ['album_id', 'uuid'],
      ['artist_id', 'uuid'],
      ['title', 'text'],
      ['isrc', 'text'],
      ['duration_ms', 'int4'],
      ['explicit', 'bool'],
      ['track_number', 'int2'],
      ['checksum_sha256', 'text'],
      ['status', 'text'],
      ['release_date', 'date'],
      ['audio_object_key', 'text'],
    ],
  },
  {
    table: 'users',
    rows: (d) => d.users,
    columns: [
      ['user_id', 'uuid'],
      ['email', 'text'],
      ['display_name', 'text'],
      ['country', 'bpchar'],
      ['tier', 'text'],
      ['created_at', 'timestamptz'],
    ],
  },
  {
    table: 'payment_methods',
    rows: (d) => d.paymentMethods,
    columns: [
      ['payment_method_id', 'uuid'],
      ['user_id', 'uuid'],
      ['provider', 'text'],
      ['provider_token', 'text'],
      ['brand', 'text'],
      ['last4', 'bpchar'],
      ['exp_month', 'int2'],
      ['exp_year', 'int2'],
    ],
  },
  {
    table: 'subscriptions',
    rows: (d) => d.subscriptions,
    columns: [
      ['subscription_id', 'uuid'],
      ['user_id', 'uuid'],
      ['plan', 'text'],
      ['status', 'text'],
      ['country', 'bpchar'],
      ['currency', 'bpchar'],
      ['price', 'numeric'],
      ['current_period_start', 'timestamptz'],
      ['current_period_end', 'timestamptz'],
    ],
  },
  {
    table: 'royalty_rates',
    rows: (d) => d.royaltyRates,
    columns: [
      ['artist_id', 'uuid'],
      ['country', 'bpchar'],
      ['rate_per_play', 'numeric'],
      ['currency', 'bpchar'],
      ['rate_version', 'int4'],
      ['effective_from', 'date'],
    ],
  },
  {
    table: 'playlists',
    rows: (d) => d.playlists,
    columns: [
      ['playlist_id', 'uuid'],
      ['owner_id', 'uuid'],
      ['title', 'text'],
      ['collaborative', 'bool'],
    ],
  },
  {
    table: 'playlist_tracks',
    rows: (d) => d.playlistTracks,
    columns: [
      ['playlist_id', 'uuid'],
      ['position', 'int4'],
      ['track_id', 'uuid'],
    ],
  },
  {
    table: 'user_follows',
    rows: (d) => d.follows,
    columns: [
      ['follower_id', 'uuid'],
      ['followee_id', 'uuid'],
    ],
  },
  {
    table: 'advertisers',
    rows: (d) => d.advertisers,
    columns: [
      ['advertiser_id', 'uuid'],
      ['name', 'text'],
      ['country', 'bpchar'],
    ],
  },
  {
    table: 'ad_campaigns',
    rows: (d) => d.campaigns,
    columns: [
      ['campaign_id', 'uuid'],
      ['advertiser_id', 'uuid'],
      ['name', 'text'],
      ['campaign_type', 'text'],
      ['promoted_artist_id', 'uuid'],
      ['start_date', 'date'],
      ['end_date', 'date'],
      ['cpm', 'numeric'],
      ['budget', 'numeric'],
      ['currency', 'bpchar'],
    ],
  },
  {
    table: 'session_logs',
    rows: (d) => d.sessions,
    columns: [
      ['session_id', 'uuid'],
      ['started_at', 'timestamptz'],
      ['user_id', 'uuid'],
      ['ip_country', 'bpchar'],
      ['device_id', 'text'],
    ],
  },
];

export const TICK_COLUMNS = TICK_FIELDS;

/** ClickHouse's DateTime text form: 'YYYY-MM-DD hh:mm:ss' in UTC. */
export const chDateTime = (isoTime: string) => isoTime.slice(0, 10) + ' ' + isoTime.slice(11, 19);

/**
 * Ticks as ClickHouse TabSeparated — the one writer, for the sink, the seed and the bench — written
 * straight into one growing buffer: every field of a validated tick is ASCII, so each is one latin1
 * write (no per-row strings to build and join). UUIDs are lower-cased here (one spelling per event); a backslash, the only character TabSeparated
 * would read as an escape that validation lets through (in device_id), is doubled.
 */
export class TsvRows {
  private buf: Buffer;
  private length = 0;
  count = 0;

  /** `expectedRows` sizes the buffer up front (a row is at most ~440 bytes, typically ~170). */
  constructor(expectedRows = 1500) {
    this.buf = Buffer.allocUnsafe(Math.max(4096, expectedRows * 176));
  }

  add(t: Tick): void {
    // 4 UUIDs, country, device (≤ 128, doubled if every character is a backslash), position, time.
    if (this.length + 4 * 37 + 3 + 2 * 128 + 1 + 12 + 20 > this.buf.length) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, 0, this.length);
      this.buf = bigger;
    }
    const b = this.buf;
    let o = this.length;
    o += b.write(t.event_id.toLowerCase(), o, 'latin1');
    b[o++] = TAB;
    o += b.write(t.play_id.toLowerCase(), o, 'latin1');
    b[o++] = TAB;
    o += b.write(t.user_id.toLowerCase(), o, 'latin1');
    b[o++] = TAB;
    o += b.write(t.track_id.toLowerCase(), o, 'latin1');
    b[o++] = TAB;
    o += b.write(t.country, o, 'latin1');
    b[o++] = TAB;
    o += b.write(
      t.device_id.includes('\\') ? t.device_id.replaceAll('\\', '\\\\') : t.device_id,
      o,
      'latin1',
    );
    b[o++] = TAB;
    o += b.write(String(t.position_ms), o, 'latin1');
    b[o++] = TAB;
    // ClickHouse's DateTime text: the ISO instant's first 19 characters with a space for the 'T'.
    b.write(t.event_time, o, 19, 'latin1');
    b[o + 10] = SPACE;
    o += 19;
    b[o++] = NEWLINE;
    this.length = o;
    this.count++;
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

const TAB = 9;
const NEWLINE = 10;
const SPACE = 32;

/** Bulk-loads ticks straight into ClickHouse as one streamed TabSeparated insert per chunk. */
export async function loadTicksToClickHouse(
  client: ClickHouseClient,
  ticks: Iterable<Tick>,
  onRows: (n: number) => void,
  rowsPerInsert = 1_000_000,
): Promise<number> {
  const it = ticks[Symbol.iterator]();
  let total = 0;
  let done = false;
  while (!done) {
    let inChunk = 0;
    const chunk = Readable.from(
      (function* () {
        let rows = new TsvRows(10_000);
        while (inChunk < rowsPerInsert) {
          const next = it.next();
          if (next.done) {
            done = true;
            break;
          }
          rows.add(next.value);
          inChunk++;
          if (inChunk % 10_000 === 0) {
            yield rows.bytes();
            onRows(10_000);
            rows = new TsvRows(10_000);
          }
        }
        if (rows.count) {
          yield rows.bytes();
          onRows(rows.count);
        }
      })(),
      { objectMode: false },
    );
    if (done && inChunk === 0) break;
    await client.insert({
      table: 'play_ticks',
      values: chunk,
      format: 'TabSeparated',
      columns: TICK_COLUMNS,
    });
    total += inChunk;
  }
  return total;
}

/** Produces ticks to Kafka like production traffic: JSON, keyed by play_id, acknowledged by all replicas. */
export async function produceTicks(
  producer: Producer,
  topic: string,
  ticks: Iterable<Tick>,
  onRows: (n: number) => void,
  batch = 2000,
): Promise<number> {
  let messages: { key: string; value: string }[] = [];
  let total = 0;
  const flush = async () => {
    if (!messages.length) return;
    await producer.send({ topic, acks: -1, messages });
    onRows(messages.length);
    total += messages.length;
    messages = [];
  };
  for (const t of ticks) {
    messages.push({ key: t.play_id, value: JSON.stringify(t) });
    if (messages.length >= batch) await flush();
  }
  await flush();
  return total;
}

/** The seeded month's approved settlement (one run, its payouts); idempotent by (month, policy 'seed'). */
export async function insertSeedSettlement(pool: DatabasePool, s: SeedSettlement, now: Date): Promise<void> {
  await pool.transaction(async (tx) => {
    const existing = await tx.maybeOneFirst(
      sql.unsafe`SELECT run_id FROM settlement_runs WHERE month = ${s.month}::date AND policy_version = 'seed'`,
    );
    if (existing) return;
    const total = s.payouts.reduce((sum, p) => sum + BigInt(p.amount.replace('.', '')), 0n);
    const runId = await tx.oneFirst(sql.unsafe`
      INSERT INTO settlement_runs (month, ingestion_cutoff, rate_version, policy_version, status, total_amount, decided_at, decided_by)
      VALUES (${s.month}::date, ${now.toISOString()}::timestamptz, 1, 'seed', 'approved', ${`${total / 100n}.${String(total % 100n).padStart(2, '0')}`}::numeric,
              ${now.toISOString()}::timestamptz, 'seed')
      RETURNING run_id`);
    await insertRows(
      tx as unknown as DatabasePool,
      'artist_payouts',
      [
        ['run_id', 'uuid'],
        ['artist_id', 'uuid'],
        ['currency', 'bpchar'],
        ['plays', 'int8'],
        ['amount', 'numeric'],
      ],
      s.payouts.map((p) => ({ ...p, run_id: runId })),
    );
  });
}
