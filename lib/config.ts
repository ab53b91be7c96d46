import path from 'node:path';
import { z } from 'zod';
import { TASK_QUEUES } from './task-queues';

/**
 * The one config loader: environment variables → validated, typed config.
 * Every address, credential and port lives here (DESIGN §8); the native stack, compose file,
 * workers and API all read the same names. Defaults are the native stack's ports on loopback.
 */

const port = z.coerce.number().int().min(1).max(65535);
const url = z.string().url();
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const hostPort = z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'expected host:port');

/** Each entry: environment variable → schema with its default. */
const variables = {
  CADENZA_ENV: z.enum(['development', 'test', 'production']).default('development'),
  CADENZA_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  CADENZA_PG_HOST: z.string().min(1).default('127.0.0.1'),
  CADENZA_PG_PORT: port.default(55432),
  CADENZA_PG_USER: z.string().min(1).default('cadenza'),
  CADENZA_PG_PASSWORD: z.string().min(1).default('cadenza'),
  CADENZA_PG_DATABASE: z.string().min(1).default('cadenza'),

  CADENZA_TEMPORAL_ADDRESS: hostPort.default('127.0.0.1:7233'),
  CADENZA_TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  CADENZA_TEMPORAL_UI_PORT: port.default(8233),

  CADENZA_KAFKA_BROKERS: z
    .string()
    .default('127.0.0.1:9092')
    .transform((s) => s.split(',').map((b) => b.trim()))
    .pipe(z.array(hostPort).min(1)),
  CADENZA_KAFKA_CONTROLLER_PORT: port.default(9093),
  CADENZA_KAFKA_TICKS_TOPIC: z
    .string()
    .regex(/^[\w.-]{1,200}$/)
    .default('play-ticks'),
  CADENZA_KAFKA_DLQ_TOPIC: z
    .string()
    .regex(/^[\w.-]{1,200}$/)
    .default('play-ticks.dlq'),
  /** Partitions of the play-ticks topic: a play's ticks stay ordered on one (keyed by play_id). */
  CADENZA_KAFKA_TICKS_PARTITIONS: z.coerce.number().int().min(1).max(1000).default(6),

  CADENZA_CLICKHOUSE_URL: url.default('http://127.0.0.1:8123'),
  CADENZA_CLICKHOUSE_TCP_PORT: port.default(19000),
  CADENZA_CLICKHOUSE_USER: z.string().min(1).default('default'),
  CADENZA_CLICKHOUSE_PASSWORD: z.string().default(''),
  CADENZA_CLICKHOUSE_DATABASE: z.string().regex(/^\w+$/).default('cadenza'),

  CADENZA_OPENSEARCH_URL: url.default('http://127.0.0.1:9200'),
  CADENZA_OPENSEARCH_TRANSPORT_PORT: port.default(9300),
  /** Prepended to every index and alias name: several deployments (or test runs) share one cluster. */
  CADENZA_OPENSEARCH_INDEX_PREFIX: z
    .string()
    .regex(/^([a-z0-9][a-z0-9_-]{0,40})?$/, 'lower-case letters, digits, _ and -')
    .default(''),

  CADENZA_MINIO_ENDPOINT: hostPort.default('127.0.0.1:9000'),
  CADENZA_MINIO_CONSOLE_PORT: port.default(9001),
  CADENZA_MINIO_ACCESS_KEY: z.string().min(3).default('cadenza'),
  CADENZA_MINIO_SECRET_KEY: z.string().min(8).default('cadenza-secret'),
  CADENZA_MINIO_USE_SSL: bool.default('false'),
  /** Where clients reach MinIO (presigned upload and stream URLs are signed for it); default the endpoint. */
  CADENZA_MINIO_PUBLIC_ENDPOINT: hostPort.optional(),
  CADENZA_MINIO_REGION: z.string().min(1).default('us-east-1'),
  /** Prepended to every bucket name: several deployments (or test runs) share one object store. */
  CADENZA_MINIO_BUCKET_PREFIX: z
    .string()
    .regex(/^([a-z0-9][a-z0-9-]{0,30})?$/, 'lower-case letters, digits and -')
    .default(''),

  CADENZA_API_HOST: z.string().min(1).default('127.0.0.1'),
  CADENZA_API_PORT: port.default(3000),
  CADENZA_API_BODY_LIMIT: z.coerce.number().int().min(1024).default(1_048_576),
  CADENZA_API_RATE_LIMIT: z.coerce.number().int().min(1).default(60_000),
  /**
   * Requests per minute from one address that carry no token or a refused one; past it the address gets
   * 429 before any signature is checked (a flood of forged tokens costs a map lookup, not a verify).
   */
  CADENZA_API_AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).default(60),
  /** The whole request (headers and body) must arrive within this; a trickling client gets 408. */
  CADENZA_API_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
  /** The headers must arrive within this (slowloris). At most the request timeout. */
  CADENZA_API_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600_000).default(10_000),
  /** A handler that has not answered within this answers 503 (a store that hangs, not one that is down). */
  CADENZA_API_HANDLER_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600_000).default(60_000),
  /** An idle keep-alive connection is closed after this. */
  CADENZA_API_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  /** A connection on which nothing moves for this long is closed, whatever state it is in. */
  CADENZA_API_IDLE_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(60_000),
  /** Open connections at most; past it new ones are closed at once. */
  CADENZA_API_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(4096),
  /** Request line and headers together, bytes; larger answers 431. */
  CADENZA_API_MAX_HEADER_BYTES: z.coerce.number().int().min(4096).max(1_048_576).default(16_384),
  /**
   * A path parameter longer than this, percent-encoded, answers 414. At least 12 times the longest a route
   * declares (a UTF-8 character is up to 12 bytes encoded), so that one is answered by its schema (400).
   */
  CADENZA_API_MAX_PARAM_LENGTH: z.coerce.number().int().min(36).max(8192).default(5000),
  /**
   * Which proxies' X-Forwarded-For to believe for the client address (per-address limits): `false`
   * (none: the socket's peer), `true` (any), a hop count, or addresses/CIDRs separated by commas.
   */
  CADENZA_API_TRUST_PROXY: z
    .string()
    .regex(
      /^(true|false|\d{1,2}|[0-9a-fA-F.:/]+(\s*,\s*[0-9a-fA-F.:/]+)*)$/,
      'true, false, a hop count, or addresses/CIDRs',
    )
    .default('false'),
  /** Seals page tokens (api/lib/page-token.ts): the same on every API process; unset, each makes its own. */
  CADENZA_API_PAGE_TOKEN_KEY: z.string().min(16).optional(),
  /** Retry-After of a 503 because a store is not answering, seconds. */
  CADENZA_API_RETRY_AFTER_SECONDS: z.coerce.number().int().min(1).max(3600).default(5),

  /**
   * Bearer tokens: an OIDC issuer's JWKS, its `iss` and the `aud` it writes for this API. Unset JWKS means
   * the project's development issuer, which CADENZA_ENV=production refuses (api/auth/issuer.ts).
   */
  CADENZA_AUTH_JWKS_URL: url.optional(),
  CADENZA_AUTH_ISSUER: z.string().min(1).optional(),
  CADENZA_AUTH_AUDIENCE: z.string().min(1).optional(),
  /** Longest token lifetime accepted (exp − iat, or exp − now without iat), seconds. */
  CADENZA_AUTH_MAX_TOKEN_LIFETIME: z.coerce
    .number()
    .int()
    .min(60)
    .max(7 * 86_400)
    .default(86_400),
  /** Clock skew allowed on exp, nbf and iat, seconds. */
  CADENZA_AUTH_CLOCK_TOLERANCE: z.coerce.number().int().min(0).max(300).default(30),
  /** The `typ` header values accepted when a token has one (RFC 9068: at+jwt), comma-separated. */
  CADENZA_AUTH_TOKEN_TYPES: z
    .string()
    .default('at+jwt,jwt')
    .transform((s) =>
      s.split(',').map((t) =>
        t
          .trim()
          .toLowerCase()
          .replace(/^application\//, ''),
      ),
    )
    .pipe(z.array(z.string().regex(/^[a-z0-9.+-]{1,40}$/)).min(1)),
  CADENZA_DEV_ISSUER_DIR: z
    .string()
    .min(1)
    .default(path.resolve(__dirname, '..', '.stack', 'dev-issuer')),

  CADENZA_SINK_GROUP_ID: z.string().min(1).default('cadenza-play-tick-sink'),
  CADENZA_SINK_MIN_BATCH_BYTES: z.coerce.number().int().min(1).default(1_048_576),
  CADENZA_SINK_MAX_WAIT_MS: z.coerce.number().int().min(1).default(500),
  CADENZA_SINK_PARTITIONS_CONCURRENTLY: z.coerce.number().int().min(1).max(64).default(3),
  /**
   * Threads that parse and validate records; 0 does it on the main thread. Threads help a sink with
   * cores to itself; on a machine it shares with the API they take its CPU (docs/BENCHMARKS.md).
   */
  CADENZA_SINK_THREADS: z.coerce.number().int().min(0).max(64).default(0),
  CADENZA_SINK_INSERTS_IN_FLIGHT: z.coerce.number().int().min(1).max(64).default(2),
  CADENZA_SINK_INSERT_INTERVAL_MS: z.coerce.number().int().min(0).max(10_000).default(500),
  CADENZA_SINK_HEALTH_PORT: port.default(3002),

  /** Payments: the provider billing charges through, and the sandbox provider's own service. */
  CADENZA_PAYMENTS_PROVIDER: z.enum(['sandbox']).default('sandbox'),
  CADENZA_PAYMENTS_SANDBOX_URL: url.default('http://127.0.0.1:3010'),
  CADENZA_PAYMENTS_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  CADENZA_SANDBOX_PG_DATABASE: z.string().regex(/^\w+$/).default('cadenza_payments_sandbox'),
  CADENZA_SANDBOX_LATENCY_MS: z.coerce.number().int().min(0).max(60_000).default(0),
  CADENZA_SANDBOX_FAILURE_RATE: z.coerce.number().min(0).max(1).default(0),
  CADENZA_SANDBOX_HANG_MS: z.coerce.number().int().min(0).max(600_000).default(30_000),
  /** How long the sandbox remembers an idempotency key (0: for ever); real providers forget after ~24 h. */
  CADENZA_SANDBOX_KEY_LIFETIME_MS: z.coerce.number().int().min(0).default(86_400_000),
  /**
   * How long the configured provider remembers an idempotency key: a charge retried later than that is
   * first looked up at the provider by the key recorded in its metadata, so it is not made twice.
   */
  CADENZA_PAYMENTS_KEY_LIFETIME_MS: z.coerce.number().int().min(1000).default(86_400_000),

  /** Catalog: the largest audio upload (bytes), how long stream URLs live, where ffmpeg's files go. */
  CADENZA_UPLOAD_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(5 * 1024 ** 3, 'at most 5 GiB (one S3 PUT)')
    .default(2 * 1024 ** 3),
  CADENZA_STREAM_URL_TTL_SECONDS: z.coerce.number().int().min(1).max(86_400).default(300),
  CADENZA_MEDIA_WORK_DIR: z.string().min(1).optional(),

  /** Billing: plans (JSON file overriding the built-in ones, see lib/billing/plans.ts). */
  CADENZA_BILLING_PLANS_FILE: z.string().min(1).optional(),
  /** A provider charge that no subscription accounts for: refunded at once, or only flagged for a person. */
  CADENZA_BILLING_ORPHAN_CHARGES: z.enum(['refund', 'flag']).default('refund'),
  /** Reconciliation leaves charges younger than this alone (their workflow may still be recording them). */
  CADENZA_BILLING_RECONCILE_SETTLE_MS: z.coerce.number().int().min(0).default(3_600_000),
  /** How far back a scheduled reconciliation compares the provider's records (at least a day). */
  CADENZA_BILLING_RECONCILE_LOOKBACK_MS: z.coerce
    .number()
    .int()
    .min(60_000)
    .default(3 * 86_400_000),
  /**
   * The plan whose period, grace and dunning an adopted subscription takes when its own plan is not in
   * the catalog (its price and currency stay as they are).
   */
  CADENZA_BILLING_ADOPT_TEMPLATE: z
    .string()
    .regex(/^[a-z][a-z0-9_-]{1,40}$/)
    .default('premium-individual'),

  /** Backups: PostgreSQL's client tools (at least the server's version), retention, the drills' template. */
  CADENZA_PG_BIN_DIR: z.string().min(1).default('/usr/lib/postgresql/15/bin'),
  /** The template restore drills make their scratch databases from (it carries pg_partman). */
  CADENZA_PG_TEMPLATE: z.string().regex(/^\w+$/).default('cadenza_template'),
  CADENZA_BACKUP_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(14),
  CADENZA_BACKUP_KEEP_AT_LEAST: z.coerce.number().int().min(1).max(1000).default(3),

  /** The notification provider the outbox relay delivers to (the sandbox in development), and the relay. */
  CADENZA_NOTIFICATIONS_URL: url.default('http://127.0.0.1:3011'),
  CADENZA_NOTIFICATIONS_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(5000),
  CADENZA_NOTIFICATIONS_PG_DATABASE: z.string().regex(/^\w+$/).default('cadenza_notifications_sandbox'),
  CADENZA_NOTIFICATIONS_FAILURE_RATE: z.coerce.number().min(0).max(1).default(0),
  /** Attempts before a message is dead-lettered; between attempts the relay waits 2^attempt s (at most 10 min). */
  CADENZA_OUTBOX_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(8),
  CADENZA_OUTBOX_BATCH: z.coerce.number().int().min(1).max(10_000).default(100),
  CADENZA_OUTBOX_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8),
  CADENZA_OUTBOX_POLL_MS: z.coerce.number().int().min(10).max(60_000).default(500),
  /** A leased message another relay may take over after this long (its relay died mid-delivery). */
  CADENZA_OUTBOX_LEASE_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
  CADENZA_RELAY_HEALTH_PORT: port.default(3003),

  /**
   * Session logs: the header a trusted edge (CDN, load balancer) sets to the client's country from its IP,
   * `none` to trust no header (the user's own country is recorded then); one session per user, device and
   * country is recorded at most every CADENZA_API_SESSION_WINDOW_MINUTES.
   */
  CADENZA_API_COUNTRY_HEADER: z
    .string()
    .regex(/^([a-z0-9-]{1,64})$/, 'a lower-case header name, or none')
    .default('x-client-country'),
  CADENZA_API_SESSION_WINDOW_MINUTES: z.coerce.number().int().min(1).max(1440).default(15),

  /** Royalties: the cut-off is the month's end plus this many hours (ticks first ingested later wait for a re-run). */
  CADENZA_ROYALTIES_LATENESS_HOURS: z.coerce
    .number()
    .int()
    .min(0)
    .max(24 * 31)
    .default(2),
  /** Days a settlement may wait for approval before finance is reminded (and again after as many days). */
  CADENZA_ROYALTIES_REMINDER_DAYS: z.coerce.number().int().min(1).max(90).default(3),
  /** Artist shards of a settlement: one child workflow each. */
  CADENZA_ROYALTIES_SHARDS: z.coerce.number().int().min(1).max(256).default(8),
  /** Seconds a presigned statement URL stays valid. */
  CADENZA_ROYALTIES_STATEMENT_URL_SECONDS: z.coerce.number().int().min(10).max(3600).default(300),

  CADENZA_OTEL_EXPORTER: z.enum(['none', 'console', 'otlp']).default('none'),
  CADENZA_OTEL_ENDPOINT: url.default('http://127.0.0.1:4318/v1/traces'),

  CADENZA_WORKER_HEALTH_PORT: port.default(3001),
  CADENZA_WORKER_METRICS_PORT: port.default(9464),
  CADENZA_WORKER_TASK_QUEUES: z
    .string()
    .default(TASK_QUEUES.join(','))
    .transform((s) => s.split(',').map((q) => q.trim()))
    .pipe(z.array(z.enum(TASK_QUEUES)).min(1)),
  /** A pre-built workflow bundle (npm run build:workflows); default dist/workflow-bundle.js when present. */
  CADENZA_WORKER_BUNDLE: z.string().min(1).optional(),
  /** Workflows kept in memory between tasks (~1.5 MB each); the rest are replayed when they wake. */
  // At least 1: with no cache, local activities (the billing writes) are dropped at every eviction.
  CADENZA_WORKER_MAX_CACHED_WORKFLOWS: z.coerce
    .number()
    .int()
    .min(1, 'at least 1: workflows with local activities need a cache')
    .max(100_000)
    .default(1000),
  CADENZA_WORKER_MAX_ACTIVITIES: z.coerce.number().int().min(1).max(10_000).default(100),
  /** ffmpeg runs at once on the catalog-media queue: each takes a core. */
  CADENZA_WORKER_MAX_MEDIA_ACTIVITIES: z.coerce.number().int().min(1).max(256).default(2),
  /**
   * Workflow tasks in progress at once, and long polls open for them. Under a storm of due timers the
   * worker waits on the server's answers more than on its CPU; more polls in flight keep both busy
   * (docs/BENCHMARKS.md, renewals). The SDK's defaults are 40 and 10.
   */
  CADENZA_WORKER_MAX_WORKFLOW_TASKS: z.coerce.number().int().min(2).max(10_000).default(100),
  CADENZA_WORKER_WORKFLOW_TASK_POLLS: z.coerce.number().int().min(2).max(10_000).default(50),
  CADENZA_WORKER_SHUTDOWN_GRACE: z
    .string()
    .regex(/^\d+(ms|s|m)$/, 'a duration such as 30s')
    .default('30s'),
  /**
   * How long a workflow task may wait in this worker's own (sticky) queue before the server moves it to
   * the shared queue, to be replayed from its whole history. See docs/BENCHMARKS.md (renewals).
   */
  CADENZA_WORKER_STICKY_TIMEOUT: z
    .string()
    .regex(/^\d+(ms|s|m)$/, 'a duration such as 10s')
    .default('10s'),
} as const;

type Variables = typeof variables;
type Env = { [K in keyof Variables]: z.output<Variables[K]> };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

function splitHostPort(value: string): { host: string; port: number } {
  const at = value.lastIndexOf(':');
  return { host: value.slice(0, at), port: Number(value.slice(at + 1)) };
}

/** The development issuer's `iss` and `aud`, used when the environment names no issuer (never in production). */
export const DEV_ISSUER = 'cadenza-dev-issuer';
export const DEV_AUDIENCE = 'cadenza-api';

/** CADENZA_API_TRUST_PROXY as Fastify's trustProxy option (a hop count: trust that many proxies in front). */
function trustProxy(value: string): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (value === 'true' || value === 'false') return value === 'true';
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    return (_address, hop) => hop < hops;
  }
  return value.split(',').map((a) => a.trim());
}

function build(env: Env) {
  const clickhouse = new URL(env.CADENZA_CLICKHOUSE_URL);
  const opensearch = new URL(env.CADENZA_OPENSEARCH_URL);
  const temporal = splitHostPort(env.CADENZA_TEMPORAL_ADDRESS);
  const minio = splitHostPort(env.CADENZA_MINIO_ENDPOINT);
  const minioPublic = splitHostPort(env.CADENZA_MINIO_PUBLIC_ENDPOINT ?? env.CADENZA_MINIO_ENDPOINT);
  const kafka = splitHostPort(env.CADENZA_KAFKA_BROKERS[0] as string);
  const sandbox = new URL(env.CADENZA_PAYMENTS_SANDBOX_URL);
  const notifications = new URL(env.CADENZA_NOTIFICATIONS_URL);
  return {
    env: env.CADENZA_ENV,
    logLevel: env.CADENZA_LOG_LEVEL,
    postgres: {
      host: env.CADENZA_PG_HOST,
      port: env.CADENZA_PG_PORT,
      user: env.CADENZA_PG_USER,
      password: env.CADENZA_PG_PASSWORD,
      database: env.CADENZA_PG_DATABASE,
    },
    temporal: {
      address: env.CADENZA_TEMPORAL_ADDRESS,
      host: temporal.host,
      port: temporal.port,
      namespace: env.CADENZA_TEMPORAL_NAMESPACE,
      uiPort: env.CADENZA_TEMPORAL_UI_PORT,
      uiUrl: `http://${temporal.host}:${env.CADENZA_TEMPORAL_UI_PORT}`,
    },
    kafka: {
      brokers: env.CADENZA_KAFKA_BROKERS,
      host: kafka.host,
      port: kafka.port,
      controllerPort: env.CADENZA_KAFKA_CONTROLLER_PORT,
      topics: { ticks: env.CADENZA_KAFKA_TICKS_TOPIC, dlq: env.CADENZA_KAFKA_DLQ_TOPIC },
      ticksPartitions: env.CADENZA_KAFKA_TICKS_PARTITIONS,
    },
    clickhouse: {
      url: env.CADENZA_CLICKHOUSE_URL,
      host: clickhouse.hostname,
      httpPort: Number(clickhouse.port || 80),
      tcpPort: env.CADENZA_CLICKHOUSE_TCP_PORT,
      user: env.CADENZA_CLICKHOUSE_USER,
      password: env.CADENZA_CLICKHOUSE_PASSWORD,
      database: env.CADENZA_CLICKHOUSE_DATABASE,
    },
    opensearch: {
      url: env.CADENZA_OPENSEARCH_URL,
      host: opensearch.hostname,
      port: Number(opensearch.port || 80),
      transportPort: env.CADENZA_OPENSEARCH_TRANSPORT_PORT,
      indexPrefix: env.CADENZA_OPENSEARCH_INDEX_PREFIX,
    },
    minio: {
      endPoint: minio.host,
      port: minio.port,
      consolePort: env.CADENZA_MINIO_CONSOLE_PORT,
      accessKey: env.CADENZA_MINIO_ACCESS_KEY,
      secretKey: env.CADENZA_MINIO_SECRET_KEY,
      useSSL: env.CADENZA_MINIO_USE_SSL,
      bucketPrefix: env.CADENZA_MINIO_BUCKET_PREFIX,
      region: env.CADENZA_MINIO_REGION,
      publicEndPoint: minioPublic.host,
      publicPort: minioPublic.port,
    },
    catalog: {
      maxUploadBytes: env.CADENZA_UPLOAD_MAX_BYTES,
      streamUrlTtlSeconds: env.CADENZA_STREAM_URL_TTL_SECONDS,
      mediaWorkDir: env.CADENZA_MEDIA_WORK_DIR,
    },
    api: {
      host: env.CADENZA_API_HOST,
      port: env.CADENZA_API_PORT,
      bodyLimit: env.CADENZA_API_BODY_LIMIT,
      rateLimitPerMinute: env.CADENZA_API_RATE_LIMIT,
      authFailuresPerMinute: env.CADENZA_API_AUTH_FAILURES_PER_MINUTE,
      requestTimeoutMs: env.CADENZA_API_REQUEST_TIMEOUT_MS,
      headersTimeoutMs: Math.min(env.CADENZA_API_HEADERS_TIMEOUT_MS, env.CADENZA_API_REQUEST_TIMEOUT_MS),
      handlerTimeoutMs: env.CADENZA_API_HANDLER_TIMEOUT_MS,
      keepAliveTimeoutMs: env.CADENZA_API_KEEP_ALIVE_TIMEOUT_MS,
      idleTimeoutMs: env.CADENZA_API_IDLE_TIMEOUT_MS,
      maxConnections: env.CADENZA_API_MAX_CONNECTIONS,
      maxHeaderBytes: env.CADENZA_API_MAX_HEADER_BYTES,
      maxParamLength: env.CADENZA_API_MAX_PARAM_LENGTH,
      trustProxy: trustProxy(env.CADENZA_API_TRUST_PROXY),
      retryAfterSeconds: env.CADENZA_API_RETRY_AFTER_SECONDS,
      pageTokenKey: env.CADENZA_API_PAGE_TOKEN_KEY,
    },
    auth: {
      /** production: only an external issuer (JWKS URL, issuer, audience all set); no development key. */
      production: env.CADENZA_ENV === 'production',
      jwksUrl: env.CADENZA_AUTH_JWKS_URL,
      issuer: env.CADENZA_AUTH_ISSUER ?? DEV_ISSUER,
      audience: env.CADENZA_AUTH_AUDIENCE ?? DEV_AUDIENCE,
      /** Which of the three the environment set (production needs all of them). */
      set: {
        jwksUrl: env.CADENZA_AUTH_JWKS_URL !== undefined,
        issuer: env.CADENZA_AUTH_ISSUER !== undefined,
        audience: env.CADENZA_AUTH_AUDIENCE !== undefined,
      },
      maxTokenLifetimeSeconds: env.CADENZA_AUTH_MAX_TOKEN_LIFETIME,
      clockToleranceSeconds: env.CADENZA_AUTH_CLOCK_TOLERANCE,
      tokenTypes: env.CADENZA_AUTH_TOKEN_TYPES,
      devIssuerDir: env.CADENZA_DEV_ISSUER_DIR,
    },
    payments: {
      provider: env.CADENZA_PAYMENTS_PROVIDER,
      timeoutMs: env.CADENZA_PAYMENTS_TIMEOUT_MS,
      sandbox: {
        url: env.CADENZA_PAYMENTS_SANDBOX_URL,
        host: sandbox.hostname,
        port: Number(sandbox.port || 80),
        database: env.CADENZA_SANDBOX_PG_DATABASE,
        latencyMs: env.CADENZA_SANDBOX_LATENCY_MS,
        failureRate: env.CADENZA_SANDBOX_FAILURE_RATE,
        hangMs: env.CADENZA_SANDBOX_HANG_MS,
        keyLifetimeMs: env.CADENZA_SANDBOX_KEY_LIFETIME_MS,
      },
      keyLifetimeMs: env.CADENZA_PAYMENTS_KEY_LIFETIME_MS,
    },
    billing: {
      plansFile: env.CADENZA_BILLING_PLANS_FILE,
      orphanCharges: env.CADENZA_BILLING_ORPHAN_CHARGES,
      reconcileSettleMs: env.CADENZA_BILLING_RECONCILE_SETTLE_MS,
      reconcileLookbackMs: env.CADENZA_BILLING_RECONCILE_LOOKBACK_MS,
      adoptTemplate: env.CADENZA_BILLING_ADOPT_TEMPLATE,
    },
    backups: {
      pgBinDir: env.CADENZA_PG_BIN_DIR,
      pgTemplate: env.CADENZA_PG_TEMPLATE,
      retentionDays: env.CADENZA_BACKUP_RETENTION_DAYS,
      keepAtLeast: env.CADENZA_BACKUP_KEEP_AT_LEAST,
    },
    notifications: {
      url: env.CADENZA_NOTIFICATIONS_URL,
      host: notifications.hostname,
      port: Number(notifications.port || 80),
      timeoutMs: env.CADENZA_NOTIFICATIONS_TIMEOUT_MS,
      database: env.CADENZA_NOTIFICATIONS_PG_DATABASE,
      failureRate: env.CADENZA_NOTIFICATIONS_FAILURE_RATE,
    },
    outbox: {
      maxAttempts: env.CADENZA_OUTBOX_MAX_ATTEMPTS,
      batch: env.CADENZA_OUTBOX_BATCH,
      concurrency: env.CADENZA_OUTBOX_CONCURRENCY,
      pollMs: env.CADENZA_OUTBOX_POLL_MS,
      leaseSeconds: env.CADENZA_OUTBOX_LEASE_SECONDS,
      healthPort: env.CADENZA_RELAY_HEALTH_PORT,
    },
    sessions: {
      countryHeader: env.CADENZA_API_COUNTRY_HEADER === 'none' ? null : env.CADENZA_API_COUNTRY_HEADER,
      windowMinutes: env.CADENZA_API_SESSION_WINDOW_MINUTES,
    },

    royalties: {
      latenessHours: env.CADENZA_ROYALTIES_LATENESS_HOURS,
      reminderDays: env.CADENZA_ROYALTIES_REMINDER_DAYS,
      shards: env.CADENZA_ROYALTIES_SHARDS,
      statementUrlSeconds: env.CADENZA_ROYALTIES_STATEMENT_URL_SECONDS,
    },
    otel: { exporter: env.CADENZA_OTEL_EXPORTER, endpoint: env.CADENZA_OTEL_ENDPOINT },
    sink: {
      groupId: env.CADENZA_SINK_GROUP_ID,
      minBatchBytes: env.CADENZA_SINK_MIN_BATCH_BYTES,
      maxWaitMs: env.CADENZA_SINK_MAX_WAIT_MS,
      partitionsConcurrently: env.CADENZA_SINK_PARTITIONS_CONCURRENTLY,
      threads: env.CADENZA_SINK_THREADS,
      insertsInFlight: env.CADENZA_SINK_INSERTS_IN_FLIGHT,
      insertIntervalMs: env.CADENZA_SINK_INSERT_INTERVAL_MS,
      healthPort: env.CADENZA_SINK_HEALTH_PORT,
    },
    worker: {
      healthPort: env.CADENZA_WORKER_HEALTH_PORT,
      metricsPort: env.CADENZA_WORKER_METRICS_PORT,
      taskQueues: env.CADENZA_WORKER_TASK_QUEUES,
      maxConcurrentActivities: env.CADENZA_WORKER_MAX_ACTIVITIES,
      maxMediaActivities: env.CADENZA_WORKER_MAX_MEDIA_ACTIVITIES,
      maxWorkflowTasks: env.CADENZA_WORKER_MAX_WORKFLOW_TASKS,
      workflowTaskPolls: env.CADENZA_WORKER_WORKFLOW_TASK_POLLS,
      maxCachedWorkflows: env.CADENZA_WORKER_MAX_CACHED_WORKFLOWS,
      bundle: env.CADENZA_WORKER_BUNDLE,
      shutdownGrace: env.CADENZA_WORKER_SHUTDOWN_GRACE as `${number}${'ms' | 's' | 'm'}`,
      stickyTimeout: env.CADENZA_WORKER_STICKY_TIMEOUT as `${number}${'ms' | 's' | 'm'}`,
    },
  };
}

export type Config = ReturnType<typeof build>;

/** The names the config reads, for docs and for the compose-file consistency test. */
export const configVariables = Object.keys(variables) as (keyof Variables)[];

/** Parses the given environment; throws ConfigError naming every bad variable. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const env: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(variables)) {
    // A production Node environment without CADENZA_ENV is production: the safe side when it was forgotten.
    const raw =
      name === 'CADENZA_ENV' && source[name] === undefined && source.NODE_ENV === 'production'
        ? 'production'
        : source[name];
    const parsed = (schema as z.ZodTypeAny).safeParse(
      raw === '' && name !== 'CADENZA_CLICKHOUSE_PASSWORD' ? undefined : raw,
    );
    if (parsed.success) env[name] = parsed.data;
    else
      problems.push(
        `${name}=${JSON.stringify(raw)}: ${parsed.error.issues.map((i) => i.message).join('; ')}`,
      );
  }
  const polls = env.CADENZA_WORKER_WORKFLOW_TASK_POLLS as number | undefined;
  const tasks = env.CADENZA_WORKER_MAX_WORKFLOW_TASKS as number | undefined;
  if (polls !== undefined && tasks !== undefined && polls > tasks) {
    problems.push(
      `CADENZA_WORKER_WORKFLOW_TASK_POLLS=${polls}: at most CADENZA_WORKER_MAX_WORKFLOW_TASKS (${tasks}); a poll needs a free task slot`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return build(env as Env);
}

/**
 * What the API needs beyond a config that loads: in production, an external issuer named in full
 * (workers and sinks do not verify tokens, so this is checked by the API only).
 */
export function apiConfigProblems(cfg: Config): string[] {
  if (!cfg.auth.production) return [];
  const missing = (['jwksUrl', 'issuer', 'audience'] as const).filter((k) => !cfg.auth.set[k]);
  const names = {
    jwksUrl: 'CADENZA_AUTH_JWKS_URL',
    issuer: 'CADENZA_AUTH_ISSUER',
    audience: 'CADENZA_AUTH_AUDIENCE',
  };
  return missing.map(
    (k) =>
      `${names[k]} is not set: CADENZA_ENV=production accepts only tokens of an external issuer (its JWKS URL, issuer and audience), never the development issuer`,
  );
}

let cached: Config | undefined;
/** The process-wide config, loaded once. */
export function config(): Config {
  cached ??= loadConfig();
  return cached;
}
