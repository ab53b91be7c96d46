import type { ClickHouseClient } from '@clickhouse/client';
import { scratchTickPipeline as scratch, type TickPipeline } from '../../stack/scratch';
import { testConfig } from './env';

export type { TickPipeline };

/** Migrated scratch databases and a play-ticks topic pair of the test's own, removed by drop(). */
export function scratchTickPipeline(name: string, partitions: number): Promise<TickPipeline> {
  return scratch(testConfig(), name, partitions);
}

/** How many distinct ticks (by event_id) are in the database's play_ticks: re-deliveries count once. */
export async function distinctTicks(ch: ClickHouseClient): Promise<number> {
  const [row] = await (
    await ch.query({ query: 'SELECT uniqExact(event_id) AS n FROM play_ticks', format: 'JSONEachRow' })
  ).json<{ n: string }>();
  return Number(row?.n);
}
