import { Context } from '@temporalio/activity';

export interface PongResult {
  answeredBy: string;
  attempt: number;
}

/**
 * Answers a ping. `workMs` simulates a long activity: it heartbeats every second and honours
 * cancellation, which is how the graceful-shutdown test proves an in-flight activity finishes.
 */
export async function pong(token: string, workMs = 0): Promise<PongResult> {
  const ctx = Context.current();
  const until = Date.now() + workMs;
  while (Date.now() < until) {
    ctx.heartbeat({ remainingMs: until - Date.now() });
    await ctx.sleep(Math.min(1000, until - Date.now()));
  }
  return { answeredBy: `${ctx.info.taskQueue}/${token.length}`, attempt: ctx.info.attempt };
}
