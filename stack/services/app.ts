import path from 'node:path';
import type { StackContext } from '../context';
import { httpProbe } from '../probes';
import type { Program } from './types';

export interface AppProgram extends Program {
  ready(): Promise<void>;
  url?: string;
}

/**
 * Cadenza's own processes, supervised beside the stack so `npm run up` leaves them running
 * and `npm run stack -- down` stops them. They run the TypeScript sources through tsx.
 */
export function appPrograms(ctx: StackContext): Record<string, AppProgram> {
  const tsx = path.join(ctx.root, 'node_modules', '.bin', 'tsx');
  const api = ctx.config.api;
  const apiUrl = `http://${api.host}:${api.port}`;
  return {
    'cadenza-worker': {
      command: `${tsx} ${path.join(ctx.root, 'workers', 'main.ts')}`,
      stopWaitSecs: 60,
      // The worker answers /healthz once it polls every task queue (see workers/main.ts).
      ready: () => httpProbe(`http://127.0.0.1:${ctx.config.worker.healthPort}/healthz`),
    },
    'cadenza-sink': {
      command: `${tsx} ${path.join(ctx.root, 'workers', 'play-tick-sink.ts')}`,
      stopWaitSecs: 60,
      ready: () => httpProbe(`http://127.0.0.1:${ctx.config.sink.healthPort}/healthz`),
    },
    // Delivers the outbox to the notification provider; answers /healthz once it runs.
    'cadenza-outbox-relay': {
      command: `${tsx} ${path.join(ctx.root, 'workers', 'outbox-relay.ts')}`,
      stopWaitSecs: 30,
      ready: () => httpProbe(`http://127.0.0.1:${ctx.config.outbox.healthPort}/healthz`),
    },
    'cadenza-api': {
      command: `${tsx} ${path.join(ctx.root, 'api', 'main.ts')}`,
      stopWaitSecs: 30,
      ready: () => httpProbe(`${apiUrl}/healthz`),
      url: `${apiUrl}/docs`,
    },
  };
}
