import { proxyActivities, sleep } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type * as activities from '../../activities/ops/ping';

const { pong } = proxyActivities<typeof activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5 },
});

export interface PingInput {
  /** An opaque correlation value echoed back; never personal data (DESIGN §2). */
  token: string;
  /** Optional pause before answering, to prove timers (and time skipping) work. */
  delay?: Duration;
}

/** Proves the frame end to end: API → Temporal → worker → activity → result. */
export async function ping(input: PingInput): Promise<{ token: string; answeredBy: string }> {
  if (input.delay) await sleep(input.delay);
  const answeredBy = await pong(input.token);
  return { token: input.token, answeredBy };
}
