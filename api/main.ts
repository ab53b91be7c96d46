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
import { config } from '../lib/config';
import { PlayTickProducer } from './lib/play-tick-producer';
import { createPaymentProvider } from '../lib/clients/payments';
import { setUpTracing } from '../lib/telemetry';
import { childLogger } from '../lib/logger';
import { buildApp } from './app';

const log = childLogger('api');

async function main(): Promise<void> {
  const cfg = config();
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
  const app = await buildApp({
    config: cfg,
    temporal,
    verify: await createVerifier(cfg.auth),
    publisher,
    pool: pg,
    clickhouse,
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
  await app.listen({ host: cfg.api.host, port: cfg.api.port });
  log.info({ url: `http://${cfg.api.host}:${cfg.api.port}`, docs: '/docs' }, 'api listening');
}

main().catch((err: unknown) => {
  log.fatal({ err }, 'api failed to start');
  process.exit(1);
});
