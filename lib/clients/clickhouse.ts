import { createClient, type ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../config';
import { measureHealth, type Health } from './health';

/** database: null connects without selecting one (for creating it). */
export function createClickHouse(
  ch: Config['clickhouse'],
  database: string | null = ch.database,
): ClickHouseClient {
  return createClient({
    url: ch.url,
    username: ch.user,
    password: ch.password,
    ...(database ? { database } : {}),
    request_timeout: 60_000,
    compression: { request: false, response: false },
  });
}

export function clickHouseHealth(client: ClickHouseClient): Promise<Health> {
  return measureHealth('clickhouse', async () => {
    const { success } = await client.ping();
    if (!success) throw new Error('ping failed');
  });
}
