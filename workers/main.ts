import http from 'node:http';
import { loadPlanCatalog } from '../lib/plans';
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { createActivities } from '../activities';
import { createClickHouse } from '../lib/clients/clickhouse';
import { createKafka } from '../lib/clients/kafka';
import { bucketName, createMinio } from '../lib/clients/minio';
import { createOpenSearch } from '../lib/clients/opensearch';
import { createCopyPool, createPostgresPool } from '../lib/clients/postgres';
import { config } from '../lib/config';
import { createPaymentProvider } from '../lib/clients/payments';
import { registerOpsMetrics } from './ops-metrics';
import { childLogger } from '../lib/logger';
import { setUpTracing } from '../lib/telemetry';
import { traceWorkflows, tracingWorkerOptions } from './interceptors';
import { ERASURE_CODE_VERSION } from '../workflows/compliance/contract';
import { temporalLogger } from './temporal-logger';

/**
 * The Temporal worker process: one Worker per configured task queue in one process by default
 * (CADENZA_WORKER_TASK_QUEUES=billing runs a process for one queue). On SIGTERM/SIGINT each worker
 * stops polling, lets in-flight activities finish within the grace time, and exits; anything
 * unfinished is retried by Temporal on another worker, so nothing is lost.
 */

const log = childLogger('worker');
const cfg = config();
const bundlePath = cfg.worker.bundle ?? path.join(__dirname, '..', 'dist', 'workflow-bundle.js');

async function main(): Promise<void> {
  Runtime.install({
    logger: temporalLogger(log),
    telemetryOptions: { metrics: { prometheus: { bindAddress: `127.0.0.1:${cfg.worker.metricsPort}` } } },
    shutdownSignals: ['SIGINT', 'SIGTERM'],
  });
  const connection = await NativeConnection.connect({ address: cfg.temporal.address });
  // Production start-up uses the pre-built bundle (npm run build:workflows); development bundles on start.
  const workflowSource: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> = existsSync(bundlePath)
    ? { workflowBundle: { codePath: bundlePath } }
    : { workflowsPath: require.resolve('../workflows') };
  const tracing = setUpTracing(cfg.otel, 'cadenza-worker');
  const pool = await createPostgresPool(cfg.postgres, 10);
  const provider = createPaymentProvider(cfg.payments);
  const registry = new Registry();
  // Activities that start or inspect workflows (GDPR ends a person's subscriptions; billing adoption and
  // reconciliation) use a client.
  const clientConnection = Connection.lazy({ address: cfg.temporal.address });
  const temporal = new Client({ connection: clientConnection, namespace: cfg.temporal.namespace });
  const clickhouse = createClickHouse(cfg.clickhouse);
  const opensearch = createOpenSearch(cfg.opensearch);
  const copyPool = createCopyPool(cfg.postgres, 4);
  // A month's settlement aggregation may take minutes at scale: its client waits up to an hour.
  const settlementClickhouse = createClickHouse(cfg.clickhouse, cfg.clickhouse.database, 3_600_000);
  const activities = createActivities({
    royalties: {
      pool,
      copyPool,
      clickhouse: settlementClickhouse,
      minio: createMinio(cfg.minio),
      bucket: bucketName('royalties', cfg.minio.bucketPrefix),
    },
    billing: {
      pool,
      provider,
      plans: loadPlanCatalog(cfg.billing.plansFile),
      keyLifetimeMs: cfg.payments.keyLifetimeMs,
      reconciliation: {
        temporal,
        policy: {
          orphanCharges: cfg.billing.orphanCharges,
          settleMs: cfg.billing.reconcileSettleMs,
          adoptTemplate: cfg.billing.adoptTemplate,
        },
        metrics: registry,
      },
    },
    compliance: {
      pool,
      clickhouse,
      opensearch,
      minio: createMinio(cfg.minio),
      kafka: createKafka(cfg.kafka, 'cadenza-worker'),
      temporal,
      provider,
      indexPrefix: cfg.opensearch.indexPrefix,
      bucketPrefix: cfg.minio.bucketPrefix,
      topics: cfg.kafka.topics,
      codeVersion: codeVersion(),
    },
    // Backups stream objects of unknown size: 16 MB upload parts bound the memory each one takes.
    ops: {
      pool,
      clickhouse,
      opensearch,
      minio: createMinio(cfg.minio, { partSize: 16 * 1024 * 1024 }),
      config: cfg,
    },
    catalog: {
      pool,
      minio: createMinio(cfg.minio),
      opensearch,
      clickhouse,
      bucketPrefix: cfg.minio.bucketPrefix,
      indexPrefix: cfg.opensearch.indexPrefix,
      maxUploadBytes: cfg.catalog.maxUploadBytes,
      workDir: cfg.catalog.mediaWorkDir,
    },
  });
  const workers = await Promise.all(
    cfg.worker.taskQueues.map((taskQueue) =>
      Worker.create({
        connection,
        namespace: cfg.temporal.namespace,
        taskQueue,
        ...workflowSource,
        activities,
        // ffmpeg is CPU-bound: the media queue runs as many at once as there are cores for it.
        maxConcurrentActivityTaskExecutions:
          taskQueue === 'catalog-media' ? cfg.worker.maxMediaActivities : cfg.worker.maxConcurrentActivities,
        // A transcode learns of its cancellation from a heartbeat's answer: send them within 2 s, not 16.
        ...(taskQueue === 'catalog-media' ? { maxHeartbeatThrottleInterval: '2s' as const } : {}),
        maxCachedWorkflows: cfg.worker.maxCachedWorkflows,
        shutdownGraceTime: cfg.worker.shutdownGrace,
        stickyQueueScheduleToStartTimeout: cfg.worker.stickyTimeout,
        maxConcurrentWorkflowTaskExecutions: cfg.worker.maxWorkflowTasks,
        maxConcurrentWorkflowTaskPolls: cfg.worker.workflowTaskPolls,
        ...tracingWorkerOptions(tracing, traceWorkflows(cfg.otel)),
      }),
    ),
  );
  // /healthz for the supervisor and orchestrators; /metrics for the process (the Temporal runtime's
  // own metrics are on the metrics port).
  collectDefaultMetrics({ register: registry, prefix: 'cadenza_worker_' });
  registerOpsMetrics(registry, { pool, temporal: { connection, namespace: cfg.temporal.namespace } });
  const health = http.createServer((req, res) => {
    if (req.url === '/metrics') {
      void registry
        .metrics()
        .then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body));
      return;
    }
    const running = workers.every((w) => w.getState() === 'RUNNING');
    const status = req.url === '/healthz' ? (running ? 200 : 503) : 404;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: running ? 'ok' : 'starting', queues: cfg.worker.taskQueues }));
  });
  health.listen(cfg.worker.healthPort, '127.0.0.1');
  log.info({ queues: cfg.worker.taskQueues, metrics: cfg.worker.metricsPort }, 'worker polling');
  try {
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    health.close();
    await connection.close();
    await Promise.allSettled([
      clientConnection.close(),
      clickhouse.close(),
      settlementClickhouse.close(),
      opensearch.close(),
    ]);
    await pool.end();
    await copyPool.end();
    await tracing.shutdown();
    log.info('worker stopped');
  }
}

/** The package version and the erasure procedure's, named in every GDPR certificate. */
function codeVersion(): string {
  const { version } = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  return `cadenza ${version}, erasure v${ERASURE_CODE_VERSION}`;
}

main().catch((err: unknown) => {
  log.fatal({ err }, 'worker failed');
  process.exit(1);
});
