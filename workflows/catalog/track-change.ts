import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { CatalogSliceActivities } from '../../activities/catalog';
import { isCatalogFailure, type TrackChangeInput, type TrackChangeResult } from './contract';

/**
 * A change of a track after upload — edit, take down, restore — applied in PostgreSQL, then followed by
 * its search documents and its ClickHouse dimension (this workflow is the outbox). ID
 * `track-change-<trackId>-<key>`, queue `catalog`. Short, so it runs whole once started: a cancellation
 * cannot leave the database changed and the projections behind.
 */
const stores = proxyActivities<CatalogSliceActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

export async function trackChange(input: TrackChangeInput): Promise<TrackChangeResult> {
  const { trackId, change } = input;
  return CancellationScope.nonCancellable(async () => {
    let trackStatus: string;
    try {
      ({ trackStatus } = await stores.applyTrackChange({
        changeId: workflowInfo().workflowId,
        trackId,
        change,
      }));
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : undefined;
      if (cause instanceof ApplicationFailure && isCatalogFailure(cause.type)) {
        return {
          trackId,
          kind: change.kind,
          status: 'rejected',
          trackStatus: null,
          failure: cause.type,
          reason: cause.message,
        };
      }
      throw err;
    }
    await Promise.all([stores.indexTrack({ trackId }), stores.upsertTrackDimension({ trackId })]);
    return { trackId, kind: change.kind, status: 'applied', trackStatus, failure: null, reason: null };
  });
}
