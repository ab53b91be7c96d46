import type { AddressInfo } from 'node:net';
import type { DatabasePool } from 'slonik';
import { createPostgresPool } from '../../lib/clients/postgres';
import type { Config } from '../../lib/config';
import { SandboxControl } from '../../lib/clients/payments-sandbox';
import { ensureSchema } from '../../sandbox/payments/schema';
import { buildSandbox, type SandboxSettings } from '../../sandbox/payments/server';
import { migratePostgres } from '../../sql/migrate/postgres';
import { scratchDatabases } from '../../stack/scratch';

/**
 * Billing's own corner of the shared stack for a test file: a migrated scratch PostgreSQL database and a
 * payments sandbox of this code on a random port with a scratch database of its own (the stack's sandbox
 * runs main's code). The returned config points payments at it. drop() stops and removes both.
 */
export interface BillingStack {
  config: Config;
  pool: DatabasePool;
  sandbox: SandboxControl;
  sandboxUrl: string;
  drop(): Promise<void>;
}

export async function billingStack(
  base: Config,
  settings: Partial<SandboxSettings> = {},
): Promise<BillingStack> {
  const db = await scratchDatabases(base, { clickhouse: false });
  await migratePostgres(db.config.postgres);
  const sandboxDb = await scratchDatabases(base, { clickhouse: false });
  const sandboxPool = await createPostgresPool(sandboxDb.config.postgres, 8);
  await ensureSchema(sandboxPool);
  const app = buildSandbox({
    pool: sandboxPool,
    settings: { latencyMs: 0, failureRate: 0, hangMs: 20_000, keyLifetimeMs: 0, ...settings },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const sandboxUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const config: Config = {
    ...db.config,
    payments: { ...db.config.payments, sandbox: { ...db.config.payments.sandbox, url: sandboxUrl } },
  };
  const pool = await createPostgresPool(config.postgres, 6);
  return {
    config,
    pool,
    sandbox: new SandboxControl(sandboxUrl),
    sandboxUrl,
    drop: async () => {
      await app.close();
      await Promise.allSettled([pool.end(), sandboxPool.end()]);
      await db.drop();
      await sandboxDb.drop();
    },
  };
}
