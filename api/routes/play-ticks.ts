import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { tickProblem, type PlayTick } from '../../domain/play-ticks/ticks';
import { withProblems } from '../schemas';

export interface TickPublisher {
  publish(ticks: readonly PlayTick[]): Promise<void>;
}

export const MAX_TICKS_PER_REQUEST = 500;

/**
 * POST /v1/play-ticks: each tick is checked on its own; the valid ones are produced to Kafka and the
 * answer (202, after Kafka acknowledged) names every rejected tick by index with its reason.
 * A listener may only send their own ticks; a service may send anyone's.
 */
export const playTickRoutes: FastifyPluginAsyncTypebox<{ publisher: TickPublisher }> = async (
  app,
  { publisher },
) => {
  app.post(
    '/play-ticks',
    {
      config: { scopes: ['listener', 'service'] },
      schema: {
        tags: ['play-ticks'],
        summary: 'Send play-ticks (one every 5 s while a track plays)',
        body: Type.Object(
          {
            ticks: Type.Array(Type.Unknown(), {
              minItems: 1,
              maxItems: MAX_TICKS_PER_REQUEST,
              description:
                'event_id, play_id, user_id, track_id (UUIDs), country (ISO 3166-1 alpha-2), device_id, position_ms, event_time (ISO-8601 UTC)',
            }),
          },
          { additionalProperties: false },
        ),
        response: withProblems({
          202: Type.Object({
            accepted: Type.Integer(),
            rejected: Type.Array(Type.Object({ index: Type.Integer(), reason: Type.String() })),
          }),
        }),
      },
    },
    async (request, reply) => {
      const { sub, scopes } = request.principal;
      const asService = scopes.includes('service');
      const subject = sub.toLowerCase();
      const now = Date.now();
      const accepted: PlayTick[] = [];
      const rejected: { index: number; reason: string }[] = [];
      request.body.ticks.forEach((raw, index) => {
        const reason = tickProblem(raw, now);
        if (reason) return void rejected.push({ index, reason });
        // Case does not matter past here: the rows carry the UUIDs' bytes, not their spelling.
        const tick = raw as PlayTick;
        if (!asService && tick.user_id.toLowerCase() !== subject) {
          return void rejected.push({
            index,
            reason: "user_id is not the token's subject: a listener sends only their own ticks",
          });
        }
        accepted.push(tick);
      });
      await publisher.publish(accepted);
      return reply.code(202).send({ accepted: accepted.length, rejected });
    },
  );
};
