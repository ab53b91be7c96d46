import { CancellationScope, isCancellation, proxyActivities } from '@temporalio/workflow';
import type { CatalogSliceActivities } from '../../activities/catalog';
import type { ReindexInput, ReindexResult } from './contract';

/**
 * Re-index with an alias swap, without downtime (ID `search-reindex-v<N>-<key>`, queue `catalog`): for each
 * search index, build `<name>-v<N>` from PostgreSQL beside the live one, move the alias to it atomically,
 * catch up on what changed meanwhile, drop the old index. Searches go to the old index until the swap and
 * to the complete new one after it. Cancelled, it drops the new indices the alias never reached.
 */
const retry = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' } as const;
const stores = proxyActivities<CatalogSliceActivities>({ startToCloseTimeout: '1 minute', retry });
const long = proxyActivities<CatalogSliceActivities>({
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '1 minute',
  retry,
});

export async function reindexSearch(input: ReindexInput): Promise<ReindexResult> {
  const { since, moves } = await stores.prepareSearchVersion({ version: input.version });
  const indices: ReindexResult['indices'] = [];
  const swapped = new Set<string>();
  try {
    for (const move of moves) {
      const documents = await long.fillSearchIndex({ move });
      // Once the alias moves, the new index must catch up whatever happens: no cancellation past here.
      const { written } = await CancellationScope.nonCancellable(async () => {
        await stores.swapSearchAlias({ move });
        swapped.add(move.to);
        const caughtUp = await long.catchUpSearchIndex({ move, since });
        if (move.from) await stores.dropSearchIndex({ index: move.from });
        return caughtUp;
      });
      indices.push({ alias: move.alias, from: move.from, to: move.to, documents, caughtUp: written });
    }
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(async () => {
        for (const move of moves) if (!swapped.has(move.to)) await stores.dropSearchIndex({ index: move.to });
      });
    }
    throw err;
  }
  return { version: input.version, indices };
}
