import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { ClickHouseClient } from '@clickhouse/client';
import type { DatabasePool } from 'slonik';
import { buildApp, type ApiDeps } from '../../api/app';
import type { PaymentProvider } from '../../domain/billing/payments';
import { PlanCatalog } from '../../domain/billing/plans';
import type { TickPublisher } from '../../api/routes/play-ticks';
import { mintDevToken } from '../../api/auth/dev-issuer';
import type { Scope } from '../../api/auth/scopes';
import { createVerifier } from '../../api/auth/verifier';
import type { Config } from '../../lib/config';
import type { Health } from '../../lib/clients/health';

/** A config whose development issuer keys live in a fresh temporary folder. */
export function withTempIssuer(cfg: Config): Config {
  return {
    ...cfg,
    auth: {
      ...cfg.auth,
      jwksUrl: undefined,
      devIssuerDir: mkdtempSync(path.join(tmpdir(), 'cadenza-issuer-')),
    },
  };
}

export async function tokenFor(cfg: Config, sub: string, scopes: Scope[], ttlSeconds = 600): Promise<string> {
  return mintDevToken(cfg.auth, { sub, scopes, ttlSeconds });
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export async function testApp(
  cfg: Config,
  opts: {
    temporal?: Client;
    readiness?: () => Promise<Health[]>;
    publisher?: TickPublisher;
    pool?: DatabasePool;
    clickhouse?: ClickHouseClient;
    payments?: ApiDeps['payments'];
    sessions?: ApiDeps['sessions'];
    catalog?: ApiDeps['catalog'];
    /** A verifier of the test's own (to count verifications); default the config's issuer. */
    verify?: ApiDeps['verify'];
    minio?: ApiDeps['minio'];
    denied?: ApiDeps['denied'];
  } = {},
) {
  const temporal =
    opts.temporal ??
    new Client({
      connection: Connection.lazy({ address: cfg.temporal.address }),
      namespace: cfg.temporal.namespace,
    });
  const app = await buildApp({
    config: cfg,
    temporal,
    verify: opts.verify ?? (await createVerifier(cfg.auth)),
    readiness: opts.readiness ?? (async () => []),
    publisher: opts.publisher ?? { publish: async () => undefined },
    ...(opts.sessions ? { sessions: opts.sessions } : {}),
    // Integration tests pass real clients; in unit tests PostgreSQL is down (503) and the rest absent.
    pool: opts.pool ?? unreachablePool(),
    clickhouse: opts.clickhouse ?? (undefined as unknown as ClickHouseClient),
    payments: opts.payments ?? {
      provider: undefined as unknown as PaymentProvider,
      plans: PlanCatalog.builtIn(),
    },
    minio: opts.minio,
    denied: opts.denied,
    // Unit tests see the catalog's routes (auth is checked before any store is touched).
    catalog: opts.catalog ?? ({} as NonNullable<ApiDeps['catalog']>),
    log: false,
  });
  await app.ready();
  return app;
}

/**
 * Unit tests have no database: a route that reaches one finds it down (a refused connection, as the pool
 * reports it), so it answers 503 like the real API would.
 */
function unreachablePool(): DatabasePool {
  const refuse = () =>
    Promise.reject(
      Object.assign(new Error('connect ECONNREFUSED (no database in unit tests)'), { code: 'ECONNREFUSED' }),
    );
  return new Proxy({} as DatabasePool, { get: () => refuse });
}
