import { createHash } from 'node:crypto';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { heartbeat } from '@temporalio/activity';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client as OpenSearch } from '@opensearch-project/opensearch';
import { stringify } from 'csv-stringify';
import type { Client as Minio } from 'minio';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { ZipFile } from 'yazl';
import { ch, type ChFragment } from '../../lib/clickhouse-sql';
import { bucketName } from '../../lib/clients/minio';
import { indexAlias, SEARCH_INDICES } from '../../lib/clients/opensearch';
import type { Counts } from '../../workflows/compliance/contract';
import { exportKey, userPrefix } from './objects';
import { storeStatus, storeWorking } from './requests';

/**
 * The export (Art. 15 access, Art. 20 portability): everything Cadenza keeps about the person, from every
 * store, as a zip streamed into the `exports` bucket — never whole in memory: each file is produced while
 * the zip is uploaded (PostgreSQL by table, ClickHouse as its own streamed output). JSON per store, CSV per
 * table, a README naming every field. The archive's SHA-256 is computed on the way.
 */

/** What each exported table holds, for the README (and the order of the archive). */
export const POSTGRES_EXPORT: {
  table: string;
  about: string;
  query: (u: string) => ReturnType<typeof sql.unsafe>;
}[] = [
  {
    table: 'account',
    about:
      'your account: e-mail, display name, country, language, tier, birth year, parental controls, created',
    query: (u) => sql.unsafe`SELECT user_id, email, display_name, country, language, tier, birth_year,
        parental_controls, created_at FROM users WHERE user_id = ${u}`,
  },
  {
    table: 'subscriptions',
    about: 'your subscriptions: plan, status, price, currency, periods, cancellation',
    query: (u) => sql.unsafe`SELECT subscription_id, plan, status, country, currency, price::text AS price,
        current_period_start, current_period_end, grace_until, cancel_at_period_end, created_at, updated_at
        FROM subscriptions WHERE user_id = ${u} ORDER BY created_at`,
  },
  {
    table: 'subscription_history',
    about: 'every change of your subscriptions: from and to status, plan, reason, when',
    query: (
      u,
    ) => sql.unsafe`SELECT h.subscription_id, h.from_status, h.to_status, h.plan, h.reason, h.changed_at
        FROM subscription_history h JOIN subscriptions s USING (subscription_id)
        WHERE s.user_id = ${u} ORDER BY h.changed_at, h.history_id`,
  },
  {
    table: 'payment_methods',
    about:
      'your payment methods as we hold them: brand, last four digits, expiry, status (never a card number)',
    query: (u) => sql.unsafe`SELECT payment_method_id, provider, brand, last4, exp_month, exp_year, status,
        created_at FROM payment_methods WHERE user_id = ${u} ORDER BY created_at`,
  },
  {
    table: 'payments',
    about: 'your charges and refunds: amount, currency, status, decline code, when',
    query: (u) => sql.unsafe`SELECT transaction_id, created_at, subscription_id, kind, amount::text AS amount,
        currency, status, decline_code FROM payment_transactions WHERE user_id = ${u} ORDER BY created_at`,
  },
  {
    table: 'playlists',
    about: 'your playlists: title, collaborative, public, created',
    query: (u) => sql.unsafe`SELECT playlist_id, title, collaborative, public, created_at
        FROM playlists WHERE owner_id = ${u} ORDER BY created_at`,
  },
  {
    table: 'playlist_tracks',
    about:
      'the tracks of your playlists and the tracks you added to others: playlist, position, track, added',
    query: (u) => sql.unsafe`SELECT pt.playlist_id, pt.position, pt.track_id, pt.added_at
        FROM playlist_tracks pt JOIN playlists p USING (playlist_id)
        WHERE p.owner_id = ${u} OR pt.added_by = ${u} ORDER BY pt.playlist_id, pt.position`,
  },
  {
    table: 'follows',
    about: 'whom you follow (direction following) and who follows you (direction follower), since when',
    query: (u) => sql.unsafe`SELECT 'following' AS direction, followee_id AS user_id, created_at
        FROM user_follows WHERE follower_id = ${u}
        UNION ALL SELECT 'follower', follower_id, created_at FROM user_follows WHERE followee_id = ${u}
        ORDER BY 3`,
  },
  {
    table: 'sessions',
    about: 'your sessions: when, the country of the IP address, the device',
    query: (u) => sql.unsafe`SELECT session_id, started_at, ip_country, device_id
        FROM session_logs WHERE user_id = ${u} ORDER BY started_at`,
  },
  {
    table: 'recommendations',
    about: 'the recommendations made for you and when',
    query: (u) => sql.unsafe`SELECT recs::text AS recs, generated_at FROM user_recs WHERE user_id = ${u}`,
  },
  {
    table: 'ad_impressions',
    about: 'the advertisements shown to you: campaign, creative, country, when',
    query: (u) => sql.unsafe`SELECT impression_id, shown_at, campaign_id, creative_id, country
        FROM ad_impressions WHERE user_id = ${u} ORDER BY shown_at`,
  },
  {
    table: 'messages',
    about: 'messages about your account queued for you: topic, content, when, sent',
    query: (u) => sql.unsafe`SELECT topic, payload::text AS payload, created_at, published_at
        FROM outbox_messages WHERE user_id = ${u} ORDER BY created_at`,
  },
  {
    table: 'gdpr_requests',
    about: 'your data-protection requests: kind, status, received, due, completed',
    query: (u) => sql.unsafe`SELECT request_id, kind, status, received_at, due_at, completed_at
        FROM gdpr_requests WHERE user_id = ${u} ORDER BY received_at`,
  },
];

export const CLICKHOUSE_EXPORT: { table: string; about: string; query: (u: string) => ChFragment }[] = [
  {
    table: 'play_ticks',
    about:
      'every play-tick your players sent (one each 5 s of listening): event, play, track, country, device, position (ms), time (UTC)',
    query: (u) => ch`SELECT event_id, play_id, track_id, country, device_id, position_ms, event_time
      FROM play_ticks WHERE user_id = toUUID(${u}) ORDER BY event_time, event_id`,
  },
  {
    table: 'plays',
    about: 'your plays per day: track, country, start (UTC), ticks heard, furthest position (ms)',
    query: (u) => ch`SELECT day, track_id, play_id, country, minMerge(started_at) AS started_at,
      uniqExactMerge(ticks) AS ticks, maxMerge(max_position_ms) AS max_position_ms
      FROM plays WHERE user_id = toUUID(${u}) GROUP BY day, track_id, play_id, country ORDER BY started_at, play_id`,
  },
];

const PgRow = z.record(z.unknown());
const EXPORTED_STORES = ['postgres', 'clickhouse', 'opensearch', 'minio'] as const;

/** JSONEachRow text → the elements of a JSON array (`[`, rows joined by commas, `]`), streamed. */
class JsonArray extends Transform {
  private rest = '';
  private first = true;
  rows = 0;
  constructor(private readonly prefix: string) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const text = this.rest + chunk.toString('utf8');
    const lines = text.split('\n');
    this.rest = lines.pop() ?? '';
    let out = '';
    for (const line of lines) out += this.row(line);
    done(null, out);
  }
  override _flush(done: TransformCallback): void {
    done(null, this.row(this.rest) + (this.first ? `${this.prefix}[]` : ']'));
  }
  private row(line: string): string {
    if (!line.trim()) return '';
    this.rows++;
    const lead = this.first ? `${this.prefix}[` : ',';
    this.first = false;
    return `${lead}\n${line}`;
  }
}

/** Joins readables one after another into one stream, created only when reached. */
function concat(parts: (() => Readable | string)[]): Readable {
  return Readable.from(
    (async function* () {
      for (const part of parts) {
        const p = part();
        if (typeof p === 'string') yield Buffer.from(p, 'utf8');
        else for await (const chunk of p) yield chunk as Buffer;
      }
    })(),
  );
}

export function readme(userIdHint: string, generatedAt: string): string {
  const lines = [
    '# Your Cadenza data',
    '',
    `Generated ${generatedAt} for account ${userIdHint}. Times are UTC (ISO 8601); amounts are decimal`,
    'strings in the currency named beside them. Each store has one JSON file; every table is also a CSV in csv/.',
    '',
    '## postgres.json — your account, subscriptions, payments, playlists and social graph',
    '',
    ...POSTGRES_EXPORT.map((t) => `- \`${t.table}\` (csv/postgres.${t.table}.csv): ${t.about}`),
    '',
    '## clickhouse.json — your listening',
    '',
    ...CLICKHOUSE_EXPORT.map((t) => `- \`${t.table}\` (csv/clickhouse.${t.table}.csv): ${t.about}`),
    '',
    '## opensearch.json — your documents in search',
    '',
    '- one list per index (`playlists`, …): the documents that are yours, as search holds them',
    '',
    '## minio.json — your files',
    '',
    '- `objects`: the files kept for you (key, size in bytes, last modified); earlier exports among them',
    '',
  ];
  return lines.join('\n');
}

export interface ArchiveResult {
  key: string;
  bytes: number;
  sha256: string;
  counts: Counts;
}

export function createExportActivities(deps: {
  pool: DatabasePool;
  clickhouse: ClickHouseClient;
  opensearch: OpenSearch;
  minio: Minio;
  indexPrefix: string;
  bucketPrefix: string;
}) {
  const { pool, clickhouse, opensearch, minio } = deps;
  const aliases = SEARCH_INDICES.map((n) => indexAlias(n, deps.indexPrefix));

  async function postgresTables(userId: string): Promise<Record<string, readonly Record<string, unknown>[]>> {
    const out: Record<string, readonly Record<string, unknown>[]> = {};
    for (const t of POSTGRES_EXPORT) {
      const rows = await pool.any(sql.type(PgRow)`${t.query(userId)}`);
      out[t.table] = rows.map(isoTimes);
    }
    return out;
  }

  async function chStream(q: ChFragment, format: 'JSONEachRow' | 'CSVWithNames'): Promise<Readable> {
    const { stream } = await clickhouse.exec({ query: `${q.text} FORMAT ${format}` });
    return stream;
  }

  /** A lazily opened stream for yazl, whose errors reach the zip. */
  const lazy =
    (open: () => Promise<Readable>) =>
    (cb: (err: unknown, stream: NodeJS.ReadableStream) => void): void => {
      open().then(
        (s) => cb(null, s),
        (err: unknown) => cb(err, new PassThrough()),
      );
    };

  return {
    /**
     * Builds the archive and uploads it as it is made. Under the user's prefix, named by the request, so a
     * retry overwrites its own half-written attempt and erasure finds every export.
     */
    async buildExport(i: { requestId: string; userId: string; generatedAt: number }): Promise<ArchiveResult> {
      for (const store of EXPORTED_STORES) await storeWorking(pool, i.requestId, store, null);
      const pg = await postgresTables(i.userId);
      const counts: Counts = Object.fromEntries(
        Object.entries(pg).map(([t, rows]) => [`postgres.${t}`, rows.length]),
      );
      const search: Record<string, unknown[]> = {};
      for (const alias of aliases) {
        const { body } = await opensearch.search({
          index: alias,
          ignore_unavailable: true,
          body: {
            size: 10_000,
            query: { bool: { should: [{ term: { owner_id: i.userId } }, { term: { user_id: i.userId } }] } },
          },
        });
        const hits = ((body as { hits?: { hits?: { _source: unknown }[] } }).hits?.hits ?? []).map(
          (h) => h._source,
        );
        if (hits.length) search[alias.slice(deps.indexPrefix.length)] = hits;
        counts[`opensearch.${alias.slice(deps.indexPrefix.length)}`] = hits.length;
      }
      const objects: { key: string; bytes: number; lastModified: string }[] = [];
      const listing = minio.listObjectsV2(
        bucketName('exports', deps.bucketPrefix),
        userPrefix(i.userId),
        true,
      );
      for await (const o of listing as AsyncIterable<{ name?: string; size?: number; lastModified?: Date }>) {
        if (o.name)
          objects.push({
            key: o.name,
            bytes: o.size ?? 0,
            lastModified: o.lastModified?.toISOString() ?? '',
          });
      }
      counts['minio.objects'] = objects.length;

      const mtime = new Date(i.generatedAt);
      const zip = new ZipFile();
      const generatedAt = mtime.toISOString();
      zip.addBuffer(Buffer.from(readme(i.userId, generatedAt), 'utf8'), 'README.md', { mtime });
      zip.addBuffer(Buffer.from(JSON.stringify(pg, null, 1), 'utf8'), 'postgres.json', { mtime });
      for (const t of POSTGRES_EXPORT) {
        const rows = pg[t.table] ?? [];
        zip.addReadStreamLazy(`csv/postgres.${t.table}.csv`, { mtime }, (cb) =>
          cb(null, Readable.from(rows).pipe(stringify({ header: true, cast: csvCast }))),
        );
      }
      // ClickHouse: one JSON document streamed from its queries, then a CSV per table, each opened in turn.
      const tickArrays: JsonArray[] = [];
      zip.addReadStreamLazy('clickhouse.json', { mtime }, (cb) =>
        cb(
          null,
          concat([
            () => '{',
            ...CLICKHOUSE_EXPORT.flatMap((t, n) => [
              () => {
                const arr = new JsonArray(`${n ? ',' : ''}\n"${t.table}": `);
                tickArrays.push(arr);
                const out = new PassThrough();
                chStream(t.query(i.userId), 'JSONEachRow').then(
                  (s) => s.pipe(arr).pipe(out),
                  (err: unknown) => out.destroy(err as Error),
                );
                return out;
              },
            ]),
            () => '\n}\n',
          ]),
        ),
      );
      for (const t of CLICKHOUSE_EXPORT) {
        zip.addReadStreamLazy(
          `csv/clickhouse.${t.table}.csv`,
          { mtime },
          lazy(() => chStream(t.query(i.userId), 'CSVWithNames')),
        );
      }
      zip.addBuffer(Buffer.from(JSON.stringify(search, null, 1), 'utf8'), 'opensearch.json', { mtime });
      zip.addBuffer(Buffer.from(JSON.stringify({ objects }, null, 1), 'utf8'), 'minio.json', { mtime });
      zip.end();

      const hash = createHash('sha256');
      let bytes = 0;
      let beat = 0;
      const counted = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          bytes += chunk.length;
          if (Date.now() - beat > 1000) {
            beat = Date.now();
            heartbeat({ bytes });
          }
          done(null, chunk);
        },
      });
      const zipErrors = new Promise<never>((_, reject) => zip.on('error', reject));
      const key = exportKey(i.userId, i.requestId);
      await Promise.race([
        minio.putObject(
          bucketName('exports', deps.bucketPrefix),
          key,
          (zip.outputStream as Readable).pipe(counted),
          undefined,
          { 'Content-Type': 'application/zip' },
        ),
        zipErrors,
      ]);
      tickArrays.forEach((a, n) => (counts[`clickhouse.${CLICKHOUSE_EXPORT[n]?.table}`] = a.rows));
      for (const store of EXPORTED_STORES) await storeStatus(pool, i.requestId, store, 'exported');
      return { key, bytes, sha256: hash.digest('hex'), counts };
    },
  };
}

/** Timestamps arrive as epoch milliseconds: the export writes them as ISO 8601 (UTC). */
function isoTimes(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row))
    out[k] = typeof v === 'number' && /(_at|_start|_end|_until)$/.test(k) ? new Date(v).toISOString() : v;
  return out;
}

/** CSV cells: dates as ISO text, objects as JSON, null as empty. */
const csvCast = {
  date: (d: Date) => d.toISOString(),
  object: (o: object) => JSON.stringify(o),
  boolean: (b: boolean) => (b ? 'true' : 'false'),
};
