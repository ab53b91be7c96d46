import { Context } from '@temporalio/activity';

/** Answers a ping; reports which worker identity ran it. */
export async function pong(token: string): Promise<string> {
  const { info } = Context.current();
  if (token.length > 200) throw new Error('token too long');
  return `${info.taskQueue}/${info.activityType}`;
}
