import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Health } from '../../lib/clients/health';

const Check = Type.Object({
  name: Type.String(),
  ok: Type.Boolean(),
  latencyMs: Type.Number(),
  detail: Type.Optional(Type.String()),
});

/** /healthz: the process is alive. /readyz: Temporal and every store answer. Both public. */
export const healthRoutes: FastifyPluginAsyncTypebox<{ readiness: () => Promise<Health[]> }> = async (
  app,
  { readiness },
) => {
  app.get(
    '/healthz',
    {
      config: { public: true },
      schema: {
        tags: ['health'],
        security: [],
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );
  app.get(
    '/readyz',
    {
      config: { public: true },
      schema: {
        tags: ['health'],
        security: [],
        response: {
          200: Type.Object({ status: Type.String(), checks: Type.Array(Check) }),
          503: Type.Object({ status: Type.String(), checks: Type.Array(Check) }),
        },
      },
    },
    async (_req, reply) => {
      const checks = await readiness();
      const ready = checks.every((c) => c.ok);
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
    },
  );
};
