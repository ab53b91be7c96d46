import path from 'node:path';
import { httpProbe } from '../probes';
import type { ServiceDef } from './types';

/**
 * The sandbox notification provider (sandbox/notifications), where the outbox relay delivers: a fake external
 * service like the payments sandbox, so it belongs to the stack. It needs only PostgreSQL and waits for it,
 * creating its own database on first start.
 */
export const notificationsSandbox: ServiceDef = {
  name: 'notifications-sandbox',
  ports: (ctx) => [ctx.config.notifications.port],
  program: (ctx) => ({
    command: `${path.join(ctx.root, 'node_modules', '.bin', 'tsx')} ${path.join(ctx.root, 'sandbox', 'notifications', 'main.ts')}`,
    stopWaitSecs: 15,
  }),
  ready: (ctx) => httpProbe(`${ctx.config.notifications.url}/healthz`, (s) => s === 200),
  readyTimeoutMs: 120_000,
  url: (ctx) => ctx.config.notifications.url,
};
