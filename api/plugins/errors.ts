import fp from 'fastify-plugin';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { CadenzaError, problemType, type FieldError } from '../../lib/errors';

/** Every error leaves as application/problem+json with a stable `type`; nothing internal leaks. */

function send(reply: FastifyReply, request: FastifyRequest, status: number, body: Record<string, unknown>) {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ ...body, status, instance: request.url, requestId: request.id });
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
    return { field, message: extra ? 'is not allowed' : (v.message ?? 'is invalid') };
  });
}

export default fp(async (app) => {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof CadenzaError) {
      if (err.status === 429 || err.status === 503) reply.header('retry-after', '1');
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
      const slug =
        status === 413 ? 'payload-too-large' : status === 415 ? 'unsupported-media-type' : 'bad-request';
      return send(reply, request, status, {
        type: problemType(slug),
        title: 'Bad request',
        detail: err.message,
      });
    }
    request.log.error({ err }, 'unhandled error');
    return send(reply, request, 500, {
      type: problemType('internal'),
      title: 'Internal error',
      detail: `Something went wrong; quote request ${request.id} when reporting it.`,
    });
  });

  app.setNotFoundHandler((request, reply) =>
    send(reply, request, 404, {
      type: problemType('not-found'),
      title: 'Not found',
      detail: `No route ${request.method} ${request.url.split('?')[0]}.`,
    }),
  );
});
