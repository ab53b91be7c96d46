import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { z } from 'zod';
import type { ChFragment } from '../clickhouse-sql';
import type { Config } from '../config';
import { measureHealth, type Health } from './health';

/**
 * database: null connects without selecting one (for creating it). Requests time out after a minute unless
 * the caller needs longer (migrations that copy tables, settlement aggregations).
 */
export function createClickHouse(
  ch: Config['clickhouse'],
  database: string | null = ch.database,
  requestTimeoutMs = 60_000,
): ClickHouseClient {
  return createClient({
    url: ch.url,
    username: ch.user,
    password: ch.password,
    ...(database ? { database } : {}),
    request_timeout: requestTimeoutMs,
    // A long request keeps its connection alive with a progress header every 110 s (few enough that an
    // hour's headers stay far below Node's header size limit).
    ...(requestTimeoutMs > 60_000
      ? {
          clickhouse_settings: {
            send_progress_in_http_headers: 1,
            http_headers_progress_interval_ms: '110000',
          },
        }
      : {}),
    compression: { request: false, response: false },
  });
}

export function clickHouseHealth(client: ClickHouseClient): Promise<Health> {
  return measureHealth('clickhouse', async () => {
    const { success } = await client.ping();
    if (!success) throw new Error('ping failed');
  });
}

/** A ClickHouse row whose shape differs from what its reader declared: a bug, named with its query. */
export class ChRowShapeError extends Error {
  constructor(query: string, issues: string) {
    super(
      `ClickHouse row does not match its declared type (${issues}) in: ${query.replace(/\s+/g, ' ').slice(0, 300)}`,
    );
    this.name = 'ChRowShapeError';
  }
}

/**
 * Column types for `chRows` schemas. ClickHouse's JSON gives 64-bit integers as strings (they may not
 * fit a double): `chCount` turns them into numbers while exact and fails past 2^53; `chDecimal` keeps
 * decimals as their text, for exact money.
 */
export const chCount = z.union([z.number(), z.string().regex(/^-?\d+$/)]).transform((v, ctx) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${v} is beyond exact JavaScript numbers` });
    return z.NEVER;
  }
  return n;
});
export const chDecimal = z.union([z.string(), z.number()]).transform((v) => String(v));

/** The one typed reader: runs a bound query (`ch` tag) and checks every row against `row`. */
export async function chRows<S extends z.ZodTypeAny>(
  client: ClickHouseClient,
  query: ChFragment,
  row: S,
): Promise<z.output<S>[]> {
  const rows = await (await client.query({ query: query.text, format: 'JSONEachRow' })).json<unknown>();
  const parsed = z.array(row).safeParse(rows);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ChRowShapeError(query.text, issues);
  }
  return parsed.data as z.output<S>[];
}
