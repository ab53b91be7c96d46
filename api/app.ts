import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Client } from '@temporalio/client';
import type { Client as OpenSearch } from '@opensearch-project/opensearch';
import type { Client as MinioClient } from 'minio';
import type { Config } from '../lib/config';
import type { Health } from '../lib/clients/health';
import type { Verifier } from './auth/verifier';
import { devJwks } from './auth/dev-issuer';
import { logger } from '../lib/logger';
import auth, { type DeniedSubjects } from './plugins/auth';
import errors, { clientErrorHandler, frameworkErrors } from './plugins/errors';
import metrics from './plugins/metrics';
import openapi from './plugins/openapi';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client as Minio } from 'minio';
import type { DatabasePool } from 'slonik';
import type { PaymentProvider } from '../domain/billing/payments';
import type { PlanCatalog } from '../domain/billing/plans';
import audit from './plugins/audit';
import { analyticsRoutes } from './routes/analytics';
import { billingReconciliationRoutes } from './routes/billing-reconciliations';
import { artistRoutes } from './routes/artists';
import { gdprRoutes } from './routes/gdpr';
import { healthRoutes } from './routes/health';
import { paymentMethodRoutes } from './routes/payment-methods';
import { pingRoutes } from './routes/ping';
import { royaltyRoutes } from './routes/royalties';
import { searchRoutes } from './routes/search';
import { trackRoutes } from './routes/tracks';
import { uploadRoutes } from './routes/uploads';
import { playTickRoutes, type TickPublisher } from './routes/play-ticks';
import { subscriptionRoutes } from './routes/subscriptions';
import { userRoutes } from './routes/users';
import { workflowRoutes } from './routes/workflows';
import { Problem } from './schemas';
import { PageTokens } from './lib/page-token';
import type { SessionRecorder } from './lib/session-recorder';

export interface RouteSummary {
  method: string;
  url: string;
  readonly public: boolean;
  readonly scopes: string[];
  /** The audit action the route records, if it is one (api/plugins/audit.ts). */
  readonly audit: string | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    routeTable: RouteSummary[];
  }
}

export interface CatalogApiDeps {
  minio: MinioClient;
  signer: MinioClient;
  opensearch: OpenSearch;
}

export interface ApiDeps {
  config: Config;
  temporal: Client;
  verify: Verifier;
  /** PostgreSQL: the projections workflows keep current (reads), payment methods, the audit log. */
  pool: DatabasePool;
  /** ClickHouse: analytics reads. */
  clickhouse: ClickHouseClient;
  /** The payment provider (tokenising methods) and the plan catalog (quotes). */
  payments: { provider: PaymentProvider; plans: PlanCatalog };
  /** MinIO: GDPR certificate and export links, royalty statements (absent: those routes answer 503). */
  minio?: Minio;
  /** Subjects refused whatever their token, and whose ticks are refused (GDPR erasure). */
  denied?: DeniedSubjects;
  /**
   * Uploads, tracks, playback and search: MinIO (and a signer for the address clients reach it at) and
   * OpenSearch. Without them (a benchmark of other routes) those routes are not served.
   */
  catalog?: CatalogApiDeps;
  /** Where accepted play-ticks go (Kafka in production). */
  publisher: TickPublisher;
  /** Records the listening sessions behind play-ticks (session_logs); tests may leave it out. */
  sessions?: SessionRecorder;
  /** Temporal and every store, for /readyz. */
  readiness: () => Promise<Health[]>;
  /** Tests pass false for a quiet app. */
  log?: boolean;
}

/** The whole HTTP API as a Fastify instance; main.ts listens, tests use inject(). */
export async function buildApp(deps: ApiDeps) {
  const { config } = deps;
  const { api } = config;
  const app = Fastify({
    loggerInstance:
      deps.log === false ? undefined : (logger.child({ component: 'api' }) as FastifyBaseLogger),
    bodyLimit: api.bodyLimit,
    // Timeouts and caps (lib/config.ts): a slow or silent client cannot hold a socket for long.
    requestTimeout: api.requestTimeoutMs,
    keepAliveTimeout: api.keepAliveTimeoutMs,
    connectionTimeout: api.idleTimeoutMs,
    handlerTimeout: api.handlerTimeoutMs,
    http: {
      headersTimeout: api.headersTimeoutMs,
      maxHeaderSize: api.maxHeaderBytes,
      // How often Node looks for requests past their timeouts (its default, 30 s, would add up to that).
      connectionsCheckingInterval: 1000,
    },
    routerOptions: { maxParamLength: api.maxParamLength },
    trustProxy: api.trustProxy,
    clientErrorHandler,
    frameworkErrors,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Bodies are JSON and must carry the right types; query strings and params are text and are coerced.
  const ajvOptions = { allErrors: true, useDefaults: true, removeAdditional: false, strict: false } as const;
  const strict = addFormats(new Ajv({ ...ajvOptions, coerceTypes: false }));
  const coercing = addFormats(new Ajv({ ...ajvOptions, coerceTypes: 'array' }));
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? strict : coercing).compile(schema),
  );

  // Every route as registered, for the auth test that walks them all.
  const routeTable: RouteSummary[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method === 'HEAD') continue;
      // Read config when asked: plugins' own onRoute hooks may still amend it (docs routes become public).
      routeTable.push({
        method,
        url: route.url,
        get public() {
          return Boolean(route.config?.public);
        },
        get scopes() {
          return route.config?.scopes ?? [];
        },
        get audit() {
          return route.config?.audit?.action;
        },
      });
    }
  });
  app.decorate('routeTable', routeTable);

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.server.maxConnections = api.maxConnections;
  app.addSchema(Problem);
  await app.register(errors, { retryAfterSeconds: api.retryAfterSeconds });
  await app.register(openapi);
  await app.register(metrics);
  deps.sessions?.registerMetrics(app.metrics);
  await app.register(auth, {
    verify: deps.verify,
    failuresPerMinute: api.authFailuresPerMinute,
    denied: deps.denied,
  });
  await app.register(audit, { pool: deps.pool });
  // Per token (its subject): after authentication, before validation; anonymous callers by address.
  await app.register(rateLimit, {
    hook: 'preValidation',
    max: config.api.rateLimitPerMinute,
    timeWindow: '1 minute',
    keyGenerator: (request) => (request.principal ? `sub:${request.principal.sub}` : `ip:${request.ip}`),
    // Health, metrics and docs are for probes and people, not clients: never limited.
    allowList: (request) => Boolean(request.routeOptions.config.public),
  });

  await app.register(healthRoutes, { readiness: deps.readiness });
  if (!config.auth.jwksUrl && !config.auth.production) {
    // The development issuer's keys, OIDC-style, so other local services can verify the same tokens.
    app.get('/.well-known/jwks.json', { config: { public: true }, schema: { hide: true } }, async () =>
      devJwks(config.auth),
    );
  }
  // Every resource under /v1, one file a resource.
  const { temporal, pool, clickhouse, payments } = deps;
  const v1 = { prefix: '/v1' };
  await app.register(workflowRoutes, { ...v1, temporal, pageTokens: new PageTokens(api.pageTokenKey) });
  await app.register(pingRoutes, { ...v1, temporal, pool });
  await app.register(playTickRoutes, {
    ...v1,
    publisher: deps.publisher,
    denied: deps.denied,
    ...(deps.sessions
      ? { sessions: { recorder: deps.sessions, countryHeader: config.sessions.countryHeader } }
      : {}),
  });
  await app.register(analyticsRoutes, { ...v1, pool, clickhouse });
  await app.register(artistRoutes, { ...v1, clickhouse });
  await app.register(paymentMethodRoutes, { ...v1, pool, provider: payments.provider });
  await app.register(subscriptionRoutes, { ...v1, temporal, pool, ...payments });
  await app.register(gdprRoutes, {
    ...v1,
    temporal,
    pool,
    minio: deps.minio,
    bucketPrefix: config.minio.bucketPrefix,
  });
  await app.register(userRoutes, { ...v1, pool });
  await app.register(billingReconciliationRoutes, { ...v1, temporal, pool });
  await app.register(royaltyRoutes, { ...v1, temporal, pool, minio: deps.minio, config });
  if (deps.catalog) {
    const { minio, signer, opensearch } = deps.catalog;
    const bucketPrefix = config.minio.bucketPrefix;
    await app.register(uploadRoutes, {
      ...v1,
      pool,
      minio,
      signer,
      bucketPrefix,
      maxUploadBytes: config.catalog.maxUploadBytes,
    });
    await app.register(trackRoutes, {
      ...v1,
      temporal,
      pool,
      minio,
      signer,
      bucketPrefix,
      streamUrlTtlSeconds: config.catalog.streamUrlTtlSeconds,
    });
    await app.register(searchRoutes, { ...v1, pool, opensearch, indexPrefix: config.opensearch.indexPrefix });
  }
  return app;
}
