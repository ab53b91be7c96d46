import { createBackupActivities } from './backups';
import type { OpsDeps } from './deps';
import { createDimensionActivities } from './dimensions';
import { createJobActivities } from './jobs';
import { createPartitionActivities } from './partitions';
import { createRecommendationActivities } from './recommendations';

export type { OpsDeps } from './deps';

/** The scheduled jobs' activities (dimension refresh, partitions, backups and drills, recommendations). */
export function createOpsActivities(deps: OpsDeps) {
  return {
    ...createJobActivities(deps.pool),
    ...createDimensionActivities(deps),
    ...createPartitionActivities(deps),
    ...createBackupActivities(deps),
    ...createRecommendationActivities(deps),
  };
}

export type OpsActivities = ReturnType<typeof createOpsActivities>;
