import type { Duration } from '@temporalio/common';

/** The ops slice's contract: the `ping` workflow that proves API → Temporal → worker → activity. */

export const TASK_QUEUE = 'ops';
export const PING_WORKFLOW = 'ping';
export const pingWorkflowId = (key: string) => `ping-${key}`;

/** The activity's start-to-close timeout; the API refuses work that could not finish inside it. */
export const PING_ACTIVITY_TIMEOUT_MS = 5 * 60_000;

export const OpsFailure = {} as const;
export type OpsFailure = (typeof OpsFailure)[keyof typeof OpsFailure];

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
