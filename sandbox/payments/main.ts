import { setTimeout as sleep } from 'node:timers/promises';
import { createPostgresPool } from '../../lib/clients/postgres';
import { config } from '../../lib/config';
import { childLogger } from '../../lib/logger';
import { ensureDatabase, ensureSchema } from './schema';
import { buildSandbox } from './server';

/** The sandbox payment provider's process: its own database, its HTTP API, a clean stop on SIGTERM. */
const log = childLogger('payments-sandbox');

/** PostgreSQL may still be starting beside us (the stack starts both at once): wait for it. */
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
  const sandbox = cfg.payments.sandbox;
  await withRetry('creating the sandbox database', () => ensureDatabase(cfg.postgres, sandbox.database));
  const pool = await withRetry('connecting', () =>
    createPostgresPool({ ...cfg.postgres, database: sandbox.database }, 10),
  );
  await ensureSchema(pool);
  const { latencyMs, failureRate, hangMs, keyLifetimeMs } = sandbox;
  const app = buildSandbox({ pool, settings: { latencyMs, failureRate, hangMs, keyLifetimeMs }, log });
  const stop = async () => {
    log.info('payments sandbox stopping');
    await app.close();
    await pool.end();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  await app.listen({ host: sandbox.host, port: sandbox.port });
  log.info({ url: sandbox.url, database: sandbox.database }, 'payments sandbox listening');
}

main().catch((err: unknown) => {
  log.fatal({ err }, 'payments sandbox failed to start');
  process.exit(1);
});
