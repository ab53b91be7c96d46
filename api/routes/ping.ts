import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Client } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { ping } from '../../workflows';
import { idempotencyKey, startOnce } from '../lib/start';
import { IdempotencyHeaders, Started, withProblems } from '../schemas';
import { PING_WORKFLOW, TASK_QUEUE, pingWorkflowId } from '../../workflows/ops/contract';

/** Starts the trivial `ping` workflow: proves API → Temporal → worker → activity end to end. */
export const pingRoutes: FastifyPluginAsyncTypebox<{ temporal: Client }> = async (app, { temporal }) => {
  app.post(
    '/ping',
    {
      config: {
        scopes: ['operator', 'service'],
        audit: { action: 'ping.start', subject: () => ({ type: 'workflow', id: 'ping' }) },
      },
      schema: {
        tags: ['workflows'],
        summary: 'Start a ping workflow',
        headers: IdempotencyHeaders,
        body: Type.Object(
          {
            token: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._:-]+$' }),
            delay: Type.Optional(
              Type.String({ pattern: '^\\d{1,6} ?(ms|s|seconds|m|minutes|h|hours|d|days)$' }),
            ),
            workMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
          },
          { additionalProperties: false },
        ),
        response: withProblems({ 202: Started }),
      },
    },
    async (request, reply) => {
      const key = idempotencyKey(request.headers['idempotency-key']) ?? randomUUID();
      const started = await startOnce<typeof ping>(temporal, PING_WORKFLOW, {
        workflowId: pingWorkflowId(key),
        taskQueue: TASK_QUEUE,
        args: [
          {
            token: request.body.token,
            delay: request.body.delay as Duration | undefined,
            workMs: request.body.workMs,
          },
        ],
      });
      request.auditSubject = { type: 'workflow', id: started.workflowId };
      return reply.code(202).header('location', started.statusUrl).send(started);
    },
  );
};
