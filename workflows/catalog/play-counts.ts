import { proxyActivities } from '@temporalio/workflow';
import type { CatalogSliceActivities } from '../../activities/catalog';
import type { PlayCountSyncResult } from './contract';

/**
 * Play counts from ClickHouse into PostgreSQL's `tracks.play_count` and the search documents of the
 * tracks whose count moved (with their albums and artists). Started by the Schedule
 * `catalog-play-count-sync` (contract SCHEDULES); a run is idempotent, so a skipped or repeated run is harmless.
 */
const { syncPlayCounts: sync } = proxyActivities<CatalogSliceActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes' },
});

export async function syncPlayCounts(): Promise<PlayCountSyncResult> {
  return sync();
}
