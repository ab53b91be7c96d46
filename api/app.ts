import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Client } from '@temporalio/client';
import type { Client as OpenSearch } from '@opensearch-project/opensearch';
import type { Client as MinioClient } from 'minio';
import type { DatabasePool } from 'slonik';
import type { Config } from '../lib/config';
import type { Health } from '../lib/clients/health';
import type { Verifier } from '../lib/auth/verifier';
import { devJwks } from '../lib/auth/dev-issuer';
import { logger } from '../lib/logger';
import auth from './plugins/auth';
import errors from './plugins/errors';
import metrics from './plugins/metrics';
import openapi from './plugins/openapi';
import { analyticsRoutes, type AnalyticsDeps } from './routes/analytics';
import { billingRoutes, type BillingApiDeps } from './routes/billing';
import { healthRoutes } from './routes/health';
import { pingRoutes } from './routes/ping';
import { searchRoutes } from './routes/search';
import { trackRoutes } from './routes/tracks';
import { uploadRoutes } from './routes/uploads';
import { playTickRoutes, type TickPublisher } from './routes/play-ticks';
import { workflowRoutes } from './routes/workflows';
import { Problem } from './schemas';

export interface RouteSummary {
  method: string;
  url: string;
  readonly public: boolean;
  readonly scopes: string[];
}

declare module 'fastify' {
  interface FastifyInstance {
    routeTable: RouteSummary[];
  }
}

export interface CatalogApiDeps {
  pool: DatabasePool;
  minio: MinioClient;
  signer: MinioClient;
  opensearch: OpenSearch;
}

export interface ApiDeps {
  config: Config;
  temporal: Client;
  verify: Verifier;
  /** Read access for the analytics endpoints. */
  analytics: AnalyticsDeps;
  /** Payment methods and subscriptions: PostgreSQL (payment methods), the provider, the plan catalog. */
  billing: Omit<BillingApiDeps, 'temporal'>;
  /**
   * Uploads, tracks, playback and search: PostgreSQL, MinIO (and a signer for its public address),
   * OpenSearch. Without them (a benchmark of other routes) those routes are not served.
   */
  catalog?: CatalogApiDeps;
  /** Where accepted play-ticks go (Kafka in production). */
  publisher: TickPublisher;
  /** Temporal and every store, for /readyz. */
  readiness: () => Promise<Health[]>;
  /** Tests pass false for a quiet app. */
  log?: boolean;
}

/** The whole HTTP API as a Fastify instance; main.ts listens, tests use inject(). */
export async function buildApp(deps: ApiDeps) {
  const { config } = deps;
  const app = Fastify({
    loggerInstance:
      deps.log === false ? undefined : (logger.child({ component: 'api' }) as FastifyBaseLogger),
    bodyLimit: config.api.bodyLimit,
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
      });
    }
  });
  app.decorate('routeTable', routeTable);

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addSchema(Problem);
  await app.register(errors);
  await app.register(openapi);
  await app.register(metrics);
  await app.register(auth, { verify: deps.verify });
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
  if (!config.auth.jwksUrl) {
    // The development issuer's keys, OIDC-style, so other local services can verify the same tokens.
    app.get('/.well-known/jwks.json', { config: { public: true }, schema: { hide: true } }, async () =>
      devJwks(config.auth),
    );
  }
  await app.register(workflowRoutes, { temporal: deps.temporal });
  await app.register(pingRoutes, { temporal: deps.temporal });
  await app.register(playTickRoutes, { publisher: deps.publisher });
  await app.register(analyticsRoutes, deps.analytics);
  await app.register(billingRoutes, { ...deps.billing, temporal: deps.temporal });
  const { catalog } = deps;
  if (!catalog) return app;
  await app.register(uploadRoutes, {
    prefix: '/v1',
    pool: catalog.pool,
    minio: catalog.minio,
    signer: catalog.signer,
    bucketPrefix: config.minio.bucketPrefix,
    maxUploadBytes: config.catalog.maxUploadBytes,
  });
  await app.register(trackRoutes, {
    prefix: '/v1',
    temporal: deps.temporal,
    pool: catalog.pool,
    minio: catalog.minio,
    signer: catalog.signer,
    bucketPrefix: config.minio.bucketPrefix,
    streamUrlTtlSeconds: config.catalog.streamUrlTtlSeconds,
  });
  await app.register(searchRoutes, {
    prefix: '/v1',
    pool: catalog.pool,
    opensearch: catalog.opensearch,
    indexPrefix: config.opensearch.indexPrefix,
  });
  return app;
}
