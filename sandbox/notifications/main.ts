import { setTimeout as sleep } from 'node:timers/promises';
import { createPostgresPool } from '../../lib/clients/postgres';
import { config } from '../../lib/config';
import { childLogger } from '../../lib/logger';
import { ensureDatabase } from '../payments/schema';
import { ensureNotificationSchema } from './schema';
import { buildNotificationSandbox } from './server';

/** The sandbox notification provider's process: its own database, its HTTP API, a clean stop on SIGTERM. */
const log = childLogger('notifications-sandbox');

async function withRetry<T>(what: string, attempt: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      log.warn({ err: (err as Error).message }, `${what} failed; retrying`);
      await sleep(1000);
    }
  }
}

async function main(): Promise<void> {
  const cfg = config();
  const n = cfg.notifications;
  // PostgreSQL may still be starting beside us (the stack starts both at once): wait for it.
  await withRetry('creating the sandbox database', () => ensureDatabase(cfg.postgres, n.database));
  const pool = await withRetry('connecting', () =>
    createPostgresPool({ ...cfg.postgres, database: n.database }, 10),
  );
  await ensureNotificationSchema(pool);
  const app = buildNotificationSandbox({ pool, settings: { latencyMs: 0, failureRate: n.failureRate }, log });
  const stop = async () => {
    log.info('notifications sandbox stopping');
    await app.close();
    await pool.end();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  await app.listen({ host: n.host, port: n.port });
  log.info({ url: n.url, database: n.database }, 'notifications sandbox listening');
}

main().catch((err: unknown) => {
  log.fatal({ err }, 'notifications sandbox failed to start');
  process.exit(1);
});
