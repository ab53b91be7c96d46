import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { buildApp, type CatalogApiDeps } from '../../api/app';
import type { AnalyticsDeps } from '../../api/routes/analytics';
import type { BillingApiDeps } from '../../api/routes/billing';
import { PlanCatalog } from '../../lib/billing/plans';
import type { TickPublisher } from '../../api/routes/play-ticks';
import { mintDevToken } from '../../lib/auth/dev-issuer';
import type { Scope } from '../../lib/auth/scopes';
import { createVerifier } from '../../lib/auth/verifier';
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
    analytics?: AnalyticsDeps;
    billing?: Omit<BillingApiDeps, 'temporal'>;
    catalog?: CatalogApiDeps;
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
    verify: await createVerifier(cfg.auth),
    readiness: opts.readiness ?? (async () => []),
    publisher: opts.publisher ?? { publish: async () => undefined },
    // Unit tests never reach a handler that reads; integration tests pass real clients.
    analytics: opts.analytics ?? ({ pool: undefined, clickhouse: undefined } as unknown as AnalyticsDeps),
    billing:
      opts.billing ??
      ({ pool: undefined, provider: undefined, plans: PlanCatalog.load(undefined) } as unknown as Omit<
        BillingApiDeps,
        'temporal'
      >),
    catalog: opts.catalog ?? ({} as CatalogApiDeps),
    log: false,
  });
  await app.ready();
  return app;
}
