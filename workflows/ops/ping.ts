import { proxyActivities, sleep } from '@temporalio/workflow';
import type * as activities from '../../activities/ops/ping';
import { PING_ACTIVITY_TIMEOUT_MS, type PingInput, type PingResult } from './contract';

const { pong } = proxyActivities<typeof activities>({
  startToCloseTimeout: PING_ACTIVITY_TIMEOUT_MS,
  heartbeatTimeout: '10 seconds',
  retry: { maximumAttempts: 5 },
});

/** Proves the frame end to end: API → Temporal → worker → activity → result. */
export async function ping(input: PingInput): Promise<PingResult> {
  if (input.delay) await sleep(input.delay);
  const { answeredBy, attempt } = await pong(input.token, input.workMs ?? 0);
  return { token: input.token, answeredBy, activityAttempt: attempt };
}
