import { proxyActivities, sleep } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type * as activities from '../../activities/ops/ping';

const { pong } = proxyActivities<typeof activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { maximumAttempts: 5 },
});

export interface PingInput {
  /** An opaque correlation value; never personal data (DESIGN §2). */
  token: string;
  /** Optional pause before answering, to prove timers (and time skipping) work. */
  delay?: Duration;
  /** Optional activity work time, to prove graceful worker shutdown. */
  workMs?: number;
}

export interface PingResult {
  token: string;
  answeredBy: string;
  activityAttempt: number;
}

/** Proves the frame end to end: API → Temporal → worker → activity → result. */
export async function ping(input: PingInput): Promise<PingResult> {
  if (input.delay) await sleep(input.delay);
  const { answeredBy, attempt } = await pong(input.token, input.workMs ?? 0);
  return { token: input.token, answeredBy, activityAttempt: attempt };
}
