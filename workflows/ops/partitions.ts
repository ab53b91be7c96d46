import { proxyActivities } from '@temporalio/workflow';
import type { OpsActivities } from '../../activities/ops';
import { OpsJob, type PartitionMaintenanceResult } from './contract';
import { runJob } from './job';

const { maintainPartitions } = proxyActivities<OpsActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '5 minutes',
  retry: { maximumAttempts: 5 },
});

/** pg_partman maintenance for every partitioned table: partitions made ahead, old ones dropped per policy. */
export async function partitionMaintenance(): Promise<PartitionMaintenanceResult> {
  return runJob(OpsJob.partitionMaintenance, () => maintainPartitions(), {
    summary: (r) => ({ tables: r.tables }),
  });
}
