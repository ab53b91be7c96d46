import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { RouteOptions } from 'fastify';
import { STORE_DATE, STORE_DATE_TIME } from '../schemas';

/**
 * The OpenAPI document is generated from the route schemas: served at /docs/json, browsable at /docs.
 * It must say what the API does, so every route's schema is completed here, once, for every route file
 * (including those added later): route authors declare their success responses and any extra error
 * statuses, and this plugin adds the rest.
 *
 * - every error response is application/problem+json with the Problem schema (the status codes every
 *   route can give are added: validation, auth, limits, stores);
 * - a query string takes only the parameters it declares (`additionalProperties: false`), and a route
 *   without one takes none; a parameter or property with a default is not required, and a body that
 *   requires nothing may be left out;
 * - a date or date-time anywhere in the input is one the stores can hold (years 2000–2099, no leap
 *   second), said by a pattern beside the format;
 * - the scopes a route needs are written into its description.
 */

type Schema = Record<string, unknown>;
const isObject = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);

const PROBLEM_REF = 'Problem';
const isProblemRef = (s: unknown) => isObject(s) && (s.$ref === PROBLEM_REF || s.$ref === `${PROBLEM_REF}#`);
const problemContent = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: PROBLEM_REF } } },
});

const STATUS_TEXT: Record<number, string> = {
  400: 'The request is invalid (problem+json names the fields)',
  401: 'No token, or a token that is not accepted',
  402: 'Payment declined',
  403: 'The token lacks the scope, or may not act for this user',
  404: 'Not found',
  409: 'Conflicts with the current state',
  413: 'The body is larger than the API accepts',
  414: 'A path parameter is longer than the API accepts',
  415: 'The body is not application/json',
  422: 'Unprocessable',
  429: 'Too many requests; see Retry-After',
  500: 'Internal error (quote the requestId)',
  502: 'An upstream provider refused',
  503: 'A store is not answering; see Retry-After',
};

/** What `userId` means wherever a route takes one (api/lib/acting.ts decides it the same way everywhere). */
const ACTING_USER =
  'the user acted for: required with a service or operator token; a listener omits it or names themselves (else 403)';

/**
 * Adds the store-date patterns to every date and date-time in an input schema, and the acting-for rule
 * to every `userId` property (copying as it goes).
 */
function completeInput(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(completeInput);
  if (!isObject(schema)) return schema;
  const out: Schema = {};
  for (const [k, v] of Object.entries(schema))
    out[k] = k === 'default' || k === 'examples' ? v : completeInput(v);
  // A property with a default may be left out (the validator fills it in): it is not required.
  if (Array.isArray(out.required) && isObject(out.properties)) {
    const props = out.properties;
    const required = (out.required as string[]).filter(
      (n) => !(isObject(props[n]) && props[n].default !== undefined),
    );
    if (required.length) out.required = required;
    else delete out.required;
  }
  const userId = isObject(out.properties) ? out.properties.userId : undefined;
  if (isObject(userId) && userId.description === undefined)
    (out.properties as Schema).userId = { ...userId, description: ACTING_USER };
  const bound = out.format === 'date-time' ? STORE_DATE_TIME : out.format === 'date' ? STORE_DATE : undefined;
  if (out.type === 'string' && out.pattern === undefined && bound) {
    out.pattern = bound.pattern;
    out.description = out.description
      ? `${String(out.description)} (${bound.description})`
      : bound.description;
  }
  return out;
}

/** The route's schema as the document and the validators should see it. */
export function completeSchema(route: RouteOptions): void {
  const schema = (route.schema ?? {}) as Schema;
  const guarded = !route.config?.public;
  const hasBody = [route.method].flat().some((m) => m === 'POST' || m === 'PUT' || m === 'PATCH');
  const hasParams = /[:*]/.test(route.url);

  const query = schema.querystring as Schema | undefined;
  schema.querystring =
    query === undefined
      ? { type: 'object', properties: {}, additionalProperties: false }
      : { ...query, additionalProperties: query.additionalProperties ?? false };
  for (const part of ['querystring', 'body', 'params', 'headers'] as const)
    if (schema[part] !== undefined) schema[part] = completeInput(schema[part]);

  const response: Schema = { ...((schema.response as Schema | undefined) ?? {}) };
  const statuses = [400, 500];
  if (guarded) statuses.push(401, 403, 404, 429, 503);
  if (hasBody) statuses.push(413, 415);
  if (hasParams) statuses.push(414);
  for (const status of statuses) response[status] ??= { $ref: PROBLEM_REF };
  for (const [status, entry] of Object.entries(response)) {
    if (Number(status) >= 400 && isProblemRef(entry))
      response[status] = problemContent(STATUS_TEXT[Number(status)] ?? 'Error');
  }
  schema.response = response;

  const scopes = route.config?.scopes ?? [];
  if (guarded && scopes.length) {
    const needs = `Needs a bearer token with one of the scopes: ${scopes.join(', ')}.`;
    schema.description = schema.description ? `${String(schema.description)}\n\n${needs}` : needs;
  }
  if (!guarded) schema.security ??= [];
  route.schema = schema;
}

/**
 * A body schema whose required properties all have defaults: a request without a body means `{}`, and
 * the defaults apply.
 */
function bodyOptional(body: unknown): boolean {
  if (!isObject(body) || body.type !== 'object') return false;
  const props = isObject(body.properties) ? body.properties : {};
  const required = Array.isArray(body.required) ? (body.required as string[]) : [];
  return required.every((name) => isObject(props[name]) && props[name].default !== undefined);
}

/** The document as generated, with what @fastify/swagger cannot say: a body that may be left out. */
function finishDocument(doc: Schema): Schema {
  for (const item of Object.values((doc.paths as Schema | undefined) ?? {}))
    for (const op of Object.values(item as Schema)) {
      const body = isObject(op) ? (op.requestBody as Schema | undefined) : undefined;
      const json = (body?.content as Schema | undefined)?.['application/json'] as Schema | undefined;
      if (body && bodyOptional(json?.schema)) body.required = false;
    }
  return doc;
}

export default fp(async (app) => {
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && bodyOptional(request.routeOptions.schema?.body)) request.body = {};
  });
  app.addHook('onRoute', (route) => {
    // The UI plugin's own routes are documentation: public, and left as they are.
    if (route.url.startsWith('/docs')) {
      route.config = { ...(route.config ?? {}), public: true };
      return;
    }
    if ((route.schema as Schema | undefined)?.hide) return;
    completeSchema(route);
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Cadenza API',
        version: '1',
        description:
          'Starts and queries Cadenza workflows. Every error is application/problem+json (RFC 9457) with a ' +
          'stable `type`. Every route but health and docs needs a bearer JWT (RFC 9068) from the configured ' +
          'issuer; listener and creator tokens carry the person’s UUID as `sub`.',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
      security: [{ bearer: [] }],
    },
    // Shared schemas keep their $id as their name in components (Problem, not def-0).
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
    transformObject: (documentObject) =>
      finishDocument(('openapiObject' in documentObject ? documentObject.openapiObject : {}) as Schema),
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });
});
