import { Connection, Client } from '@temporalio/client';
import { loadPlanCatalog } from '../lib/plans';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import { createVerifier } from './auth/verifier';
import { createClickHouse, clickHouseHealth } from '../lib/clients/clickhouse';
import { createKafka, kafkaHealth } from '../lib/clients/kafka';
import { createMinio, createMinioSigner, minioHealth } from '../lib/clients/minio';
import { createOpenSearch, openSearchHealth } from '../lib/clients/opensearch';
import { createPostgresPool, postgresHealth } from '../lib/clients/postgres';
import { cachedChecks } from '../lib/clients/health';
import { temporalHealth } from '../lib/clients/temporal';
import { apiConfigProblems, config, ConfigError } from '../lib/config';
import { PlayTickProducer } from './lib/play-tick-producer';
import { createPaymentProvider } from '../lib/clients/payments';
import { ListFollower } from '../lib/erasure-lists';
import { setUpTracing } from '../lib/telemetry';
import { childLogger } from '../lib/logger';
import { buildApp } from './app';
import { SessionRecorder } from './lib/session-recorder';
import { isStoreOutage } from './problems';

const log = childLogger('api');

async function main(): Promise<void> {
  const cfg = config();
  const problems = apiConfigProblems(cfg);
  if (problems.length) throw new ConfigError(problems);
  // Say which tokens this API trusts, first thing: an operator must never have to guess.
  if (cfg.auth.jwksUrl)
    log.info(
      { env: cfg.env, jwks: cfg.auth.jwksUrl, issuer: cfg.auth.issuer, audience: cfg.auth.audience },
      'auth: tokens of the external issuer only',
    );
  else
    log.warn(
      { env: cfg.env, issuer: cfg.auth.issuer, keys: cfg.auth.devIssuerDir },
      'auth: DEVELOPMENT issuer (npm run token) — its key is on this host; never use it in production',
    );
  // Lazy: the API starts even while a store is still coming up; /readyz says which one is not there yet.
  const connection = Connection.lazy({ address: cfg.temporal.address });
  const tracing = setUpTracing(cfg.otel, 'cadenza-api');
  const temporal = new Client({
    connection,
    namespace: cfg.temporal.namespace,
    interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
  });
  const pg = await createPostgresPool(cfg.postgres, 4);
  const clickhouse = createClickHouse(cfg.clickhouse);
  const opensearch = createOpenSearch(cfg.opensearch);
  const minio = createMinio(cfg.minio);
  const kafka = createKafka(cfg.kafka, 'cadenza-api');
  const publisher = new PlayTickProducer(kafka, cfg.kafka.topics.ticks, 3000);
  // Erased accounts: loaded whole before the API listens, then followed (an erasure waits for us).
  const denied = new ListFollower(pg, { list: 'denied_subjects', role: 'api' });
  await denied.start();
  const sessions = new SessionRecorder(pg, { windowMinutes: cfg.sessions.windowMinutes }, log);
  const app = await buildApp({
    minio,
    config: cfg,
    temporal,
    verify: await createVerifier(cfg.auth),
    publisher,
    sessions,
    pool: pg,
    clickhouse,
    denied,
    payments: {
      provider: createPaymentProvider(cfg.payments),
      plans: loadPlanCatalog(cfg.billing.plansFile),
    },
    catalog: { minio, signer: createMinioSigner(cfg.minio), opensearch },
    readiness: cachedChecks(() =>
      Promise.all([
        temporalHealth(connection),
        postgresHealth(pg),
        clickHouseHealth(clickhouse),
        openSearchHealth(opensearch),
        minioHealth(minio),
        kafkaHealth(kafka),
      ]),
    ),
  });
  const close = async () => {
    await app.close();
    await denied.stop();
    await sessions.stop();
    await Promise.allSettled([
      pg.end(),
      clickhouse.close(),
      opensearch.close(),
      connection.close(),
      tracing.shutdown(),
    ]);
    process.exit(0);
  };
  process.once('SIGTERM', () => void close());
  process.once('SIGINT', () => void close());
  sessions.start();
  await app.listen({ host: cfg.api.host, port: cfg.api.port });
  log.info({ url: `http://${cfg.api.host}:${cfg.api.port}`, docs: '/docs' }, 'api listening');
}

// A store client that drops a connection failure on the floor (pg under slonik does, when PostgreSQL goes
// away mid-query) must not take the API down with it; anything else is a bug and still ends the process.
process.on('unhandledRejection', (reason) => {
  if (isStoreOutage(reason)) return void log.warn({ err: reason }, 'a store client left a failure unhandled');
  throw reason;
});

main().catch((err: unknown) => {
  log.fatal({ err }, 'api failed to start');
  process.exit(1);
});
