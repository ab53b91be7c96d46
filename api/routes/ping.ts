import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Client } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { ping } from '../../workflows';
import { idempotencyKey, startOnce } from '../lib/start';
import { IdempotencyHeaders, Started, withProblems } from '../schemas';
import {
  PING_ACTIVITY_TIMEOUT_MS,
  PING_WORKFLOW,
  TASK_QUEUE,
  pingWorkflowId,
} from '../../workflows/ops/contract';

/** What the ping activity needs beyond its work to finish inside its timeout. */
const PING_WORK_MARGIN_MS = 10_000;

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
            // Work that cannot finish inside the activity's timeout would only burn a slot until it expires.
            workMs: Type.Optional(
              Type.Integer({
                minimum: 0,
                maximum: PING_ACTIVITY_TIMEOUT_MS - PING_WORK_MARGIN_MS,
                description: 'activity work time; it must end inside the activity timeout',
              }),
            ),
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
