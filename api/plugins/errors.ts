import type { Socket } from 'node:net';
import fp from 'fastify-plugin';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { CadenzaError, problemType, TooManyRequestsError, type FieldError } from '../../lib/errors';
import { isStoreOutage } from '../problems';

/**
 * Every error leaves as application/problem+json with a stable `type`; nothing internal leaks. That
 * includes what Fastify and Node answer before any route runs (bad URL, path parameter too long, headers
 * too large, broken framing, a request that took too long) and a method the path does not have (405).
 */

const METHODS: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'];

function send(reply: FastifyReply, request: FastifyRequest, status: number, body: Record<string, unknown>) {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ ...body, status, instance: request.url.split('?')[0], requestId: request.id });
}

/** Fastify's validation errors → fields named by JSON pointer-ish paths (`body.ticks.3.country`). */
function fieldErrors(err: FastifyError): FieldError[] {
  return (err.validation ?? []).map((v) => {
    const base = `${err.validationContext ?? 'body'}${v.instancePath.replace(/\//g, '.')}`;
    const missing =
      v.keyword === 'required' ? (v.params as { missingProperty?: string }).missingProperty : undefined;
    const extra =
      v.keyword === 'additionalProperties'
        ? (v.params as { additionalProperty?: string }).additionalProperty
        : undefined;
    const field = (missing ?? extra) ? `${base}.${missing ?? extra}` : base;
    const allowed =
      v.keyword === 'enum' ? (v.params as { allowedValues?: unknown[] }).allowedValues : undefined;
    if (allowed) return { field, message: `must be one of ${allowed.join(', ')}` };
    return { field, message: extra ? 'is not allowed' : (v.message ?? 'is invalid') };
  });
}

const CLIENT_ERRORS: Record<number, { slug: string; title: string }> = {
  400: { slug: 'bad-request', title: 'Bad request' },
  408: { slug: 'request-timeout', title: 'Request timeout' },
  413: { slug: 'payload-too-large', title: 'Payload too large' },
  414: { slug: 'uri-too-long', title: 'URI too long' },
  415: { slug: 'unsupported-media-type', title: 'Unsupported media type' },
  431: { slug: 'headers-too-large', title: 'Request header fields too large' },
};

/**
 * Node's clientError (before Fastify sees a request): framing errors, headers over the limit, a request
 * that did not arrive in time. Answered as problem+json straight on the socket, which is then closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const status =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const { slug, title } = CLIENT_ERRORS[status] as { slug: string; title: string };
  const detail =
    status === 408
      ? 'The request did not arrive in time.'
      : status === 431
        ? 'The request line and headers are larger than this API accepts.'
        : 'The request is not well-formed HTTP/1.1.';
  const body = JSON.stringify({ type: problemType(slug), title, status, detail });
  if (socket.writable && !(socket as Socket & { _httpMessage?: unknown })._httpMessage) {
    socket.write(
      `HTTP/1.1 ${status} ${title}\r\nContent-Type: application/problem+json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroySoon();
}

export default fp<{ retryAfterSeconds: number }>(async (app, { retryAfterSeconds }) => {
  // Every method and path the app serves, to tell "no such path" (404) from "not this method" (405).
  const known = FindMyWay({ ignoreTrailingSlash: false, maxParamLength: Number.MAX_SAFE_INTEGER });
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) known.on(method as HTTPMethod, route.url, () => undefined);
  });
  const allowed = (path: string) => METHODS.filter((m) => known.find(m, path) !== null);

  // A request refused before its body was read (401, 413, 429…): close the connection after the
  // answer rather than wait for (or drain) a body that may trickle in for ever.
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode >= 400 && !request.raw.complete) reply.header('connection', 'close');
    return payload;
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    // No route here (a method Fastify reads a body for, such as QUERY, fails on the body first).
    if (request.is404) return notFound(request, reply);
    if (err instanceof CadenzaError) {
      if (err instanceof TooManyRequestsError) reply.header('retry-after', String(err.retryAfterSeconds));
      else if (err.status === 429) reply.header('retry-after', '1');
      else if (err.status === 503) reply.header('retry-after', String(retryAfterSeconds));
      return send(reply, request, err.status, {
        type: err.type,
        title: err.title,
        detail: err.message,
        ...err.extra,
      });
    }
    if (err.validation) {
      const errors = fieldErrors(err);
      return send(reply, request, 400, {
        type: problemType('validation'),
        title: 'Invalid request',
        detail: errors.map((e) => `${e.field} ${e.message}`).join('; '),
        errors,
      });
    }
    const status = err.statusCode ?? 500;
    if (status === 429) {
      return send(reply, request, 429, {
        type: problemType('rate-limited'),
        title: 'Too many requests',
        detail: 'Slow down; retry after the time in Retry-After.',
      });
    }
    if (status >= 400 && status < 500) {
      // Fastify's own client errors (body too large, bad JSON, unsupported media type): their message is safe.
      const { slug, title } = CLIENT_ERRORS[status] ?? { slug: 'bad-request', title: 'Bad request' };
      return send(reply, request, status, { type: problemType(slug), title, detail: err.message });
    }
    // A store that is down or a handler that ran out of time: the request can be retried later.
    if (isStoreOutage(err) || err.code === 'FST_ERR_HANDLER_TIMEOUT') {
      request.log.warn({ err }, 'store not answering');
      reply.header('retry-after', String(retryAfterSeconds));
      return send(reply, request, 503, {
        type: problemType('unavailable'),
        title: 'Service unavailable',
        detail: `A store this request needs is not answering; retry after ${retryAfterSeconds} s.`,
      });
    }
    request.log.error({ err }, 'unhandled error');
    return send(reply, request, 500, {
      type: problemType('internal'),
      title: 'Internal error',
      detail: `Something went wrong; quote request ${request.id} when reporting it.`,
    });
  });

  function notFound(request: FastifyRequest, reply: FastifyReply) {
    const path = request.url.split('?')[0] as string;
    const methods = allowed(path);
    if (methods.length > 0) {
      reply.header('allow', methods.join(', '));
      return send(reply, request, 405, {
        type: problemType('method-not-allowed'),
        title: 'Method not allowed',
        detail: `${path} answers ${methods.join(', ')}, not ${request.method}.`,
      });
    }
    return send(reply, request, 404, {
      type: problemType('not-found'),
      title: 'Not found',
      detail: `No route ${request.method} ${path}.`,
    });
  }
  app.setNotFoundHandler(notFound);
});

/** Fastify's errors raised while routing, before any hook (frameworkErrors): a bad URL, a path too long. */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const tooLong = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
  void send(reply, request, tooLong ? 414 : 400, {
    type: problemType(tooLong ? 'uri-too-long' : 'bad-request'),
    title: tooLong ? 'URI too long' : 'Bad request',
    detail: tooLong
      ? 'A path parameter is longer than this API accepts.'
      : 'The URL is not valid (a percent-encoding that does not decode).',
  });
}
