import path from 'node:path';
import { httpProbe } from '../probes';
import type { ServiceDef } from './types';

/**
 * The sandbox payment provider (sandbox/payments): a fake external service, so it belongs to the stack
 * like the stores, and `stack up` starts it for tests without the app processes. It needs only PostgreSQL
 * and waits for it (both start together), creating its own database on first start.
 */
export const paymentsSandbox: ServiceDef = {
  name: 'payments-sandbox',
  ports: (ctx) => [ctx.config.payments.sandbox.port],
  program: (ctx) => ({
    command: `${path.join(ctx.root, 'node_modules', '.bin', 'tsx')} ${path.join(ctx.root, 'sandbox', 'payments', 'main.ts')}`,
    stopWaitSecs: 15,
  }),
  ready: (ctx) => httpProbe(`${ctx.config.payments.sandbox.url}/healthz`, (s) => s === 200),
  readyTimeoutMs: 120_000,
  url: (ctx) => ctx.config.payments.sandbox.url,
};
