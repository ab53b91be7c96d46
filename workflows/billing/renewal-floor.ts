import { continueAsNew, proxyLocalActivities, sleep } from '@temporalio/workflow';
import type { RenewalFloorActivities } from '../../activities/billing/renewal-floor';

/**
 * The floor of a renewal, for `npm run bench:renewals`: the same shape as an imported subscription's
 * renewal — a local activity at the start (the opening write), a timer to the due time, a local activity
 * (the charge and its write), continue-as-new, and the next run's timer — with activities that do
 * nothing. What the server and worker cost a renewal of this shape, measured in the same run.
 */
const { renewalFloorStep } = proxyLocalActivities<RenewalFloorActivities>({
  startToCloseTimeout: '30 seconds',
});

export async function renewalFloor(input: { dueAt: number; continued?: boolean }): Promise<void> {
  if (input.continued) return sleep('30 days'); // the next period's wait, as a renewed run's
  await renewalFloorStep();
  await sleep(Math.max(0, input.dueAt - Date.now()));
  await renewalFloorStep();
  return continueAsNew<typeof renewalFloor>({ dueAt: input.dueAt, continued: true });
}
