import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { OpsActivities } from '../../activities/ops';
import { OpsJob, type RecommendationsInput, type RecommendationsResult } from './contract';
import { runJob } from './job';

const { computeTrackNeighbors, recommendForShard, dropOldNeighborRuns } = proxyActivities<OpsActivities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '5 minutes',
  retry: { maximumAttempts: 5 },
});

/**
 * Co-listening recommendations for every listener: the tracks' neighbours once, then the listeners shard by
 * shard (in parallel; each shard's lists replace that shard's old ones), then the old neighbour tables go.
 * The window ends when the run was due (its start), so a retried run computes the same lists.
 */
export async function refreshRecommendations(input: RecommendationsInput): Promise<RecommendationsResult> {
  const info = workflowInfo();
  const runId = info.workflowId;
  const asOf = info.startTime.toISOString();
  return runJob(
    OpsJob.recommendations,
    async () => {
      const tracksWithNeighbors = await computeTrackNeighbors({
        runId,
        asOf,
        windowDays: input.windowDays,
        neighbors: input.neighbors,
      });
      const shards = Array.from({ length: input.shards }, (_, shard) => shard);
      const written = await Promise.all(
        shards.map((shard) =>
          recommendForShard({
            runId,
            asOf,
            windowDays: input.windowDays,
            perUser: input.perUser,
            shard,
            shards: input.shards,
          }),
        ),
      );
      await dropOldNeighborRuns({ keepRunId: runId });
      return { runId, tracksWithNeighbors, listeners: written.reduce((a, b) => a + b, 0) };
    },
    { summary: (r) => ({ ...r }) },
  );
}
