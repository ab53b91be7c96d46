import { proxyActivities } from '@temporalio/workflow';
import type { OpsActivities } from '../../activities/ops';
import { OpsJob, type DimensionRefreshInput, type DimensionRefreshResult } from './contract';
import { runJob } from './job';

const { refreshChangedDimensions } = proxyActivities<OpsActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 5 },
});

/** PostgreSQL → ClickHouse dimensions: rows changed since the last refresh, erased users removed. */
export async function dimensionRefresh(input: DimensionRefreshInput): Promise<DimensionRefreshResult> {
  return runJob(OpsJob.dimensionRefresh, () => refreshChangedDimensions(input), {
    summary: (r) => ({ ...r }),
  });
}
