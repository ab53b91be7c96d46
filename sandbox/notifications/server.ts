import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import type { Logger } from 'pino';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

/**
 * The sandbox notification provider: a small HTTP service like a mail/push provider's test mode, that records
 * what it received. POST /v1/notifications needs an Idempotency-Key: a key seen before answers 200 with the
 * notification it made the first time (and counts the repeat), never a second notification; the same key
 * with another message answers 409. Knobs (GET/PUT /_sandbox/settings): every POST waits `latencyMs`, and
 * with probability `failureRate` answers 503 before doing anything (1: an outage).
 */

export interface NotificationSettings {
  latencyMs: number;
  failureRate: number;
}

const Body = z.object({
  topic: z.string().regex(/^[a-z_]+\.[a-z_]+$/),
  recipient: z.object({
    userId: z.string().uuid(),
    email: z.string().min(3).max(320),
    language: z.string().max(20),
  }),
  data: z.record(z.unknown()),
});
const Settings = z
  .object({ latencyMs: z.number().int().min(0).max(60_000), failureRate: z.number().min(0).max(1) })
  .partial()
  .strict();
const Recorded = z.object({
  id: z.string(),
  fingerprint: z.string(),
  created: z.boolean(),
  deliveries: z.number(),
});
const Listed = z.object({
  id: z.string(),
  idempotency_key: z.string(),
  topic: z.string(),
  user_id: z.string(),
  deliveries: z.number(),
  data: z.record(z.unknown()),
});
const Summary = z.object({ notifications: z.number(), deliveries: z.number(), duplicates: z.number() });

export function buildNotificationSandbox(deps: {
  pool: DatabasePool;
  settings: NotificationSettings;
  log?: Logger;
}) {
  const { pool } = deps;
  const settings = { ...deps.settings };
  const app = Fastify({ loggerInstance: deps.log as FastifyBaseLogger | undefined });
  const problem = (status: number, code: string, message: string) => ({ error: { code, message }, status });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.post('/v1/notifications', async (request, reply) => {
    if (settings.latencyMs) await sleep(settings.latencyMs);
    if (Math.random() < settings.failureRate)
      return reply
        .code(503)
        .send(problem(503, 'unavailable', 'the provider is failing (sandbox failureRate)'));
    const key = request.headers['idempotency-key'];
    if (typeof key !== 'string' || key.length < 8 || key.length > 200)
      return reply
        .code(400)
        .send(
          problem(400, 'idempotency_key_invalid', 'an Idempotency-Key of 8 to 200 characters is required'),
        );
    const parsed = Body.safeParse(request.body);
    if (!parsed.success)
      return reply
        .code(400)
        .send(
          problem(
            400,
            'invalid_request',
            parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
          ),
        );
    const b = parsed.data;
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([b.topic, b.recipient, b.data]))
      .digest('hex');
    const row = await pool.one(sql.type(Recorded)`
      INSERT INTO notifications (id, idempotency_key, fingerprint, topic, user_id, email, language, data)
      VALUES (${`ntf_${randomBytes(12).toString('hex')}`}, ${key}, ${fingerprint}, ${b.topic}, ${b.recipient.userId},
              ${b.recipient.email}, ${b.recipient.language}, ${sql.jsonb(b.data as Parameters<typeof sql.jsonb>[0])})
      ON CONFLICT (idempotency_key) DO UPDATE SET deliveries = notifications.deliveries + 1, last_delivery_at = now()
      RETURNING id, fingerprint, (xmax = 0) AS created, deliveries`);
    if (row.fingerprint !== fingerprint)
      return reply
        .code(409)
        .send(problem(409, 'idempotency_key_reused', 'this Idempotency-Key was used with another message'));
    return reply
      .code(row.created ? 201 : 200)
      .send({ id: row.id, status: 'accepted', deliveries: row.deliveries });
  });

  app.get('/v1/notifications', async (request) => {
    const q = z
      .object({ limit: z.coerce.number().int().min(1).max(10_000).default(100) })
      .parse(request.query);
    const rows = await pool.any(sql.type(Listed)`
      SELECT id, idempotency_key, topic, user_id::text AS user_id, deliveries, data FROM notifications
      ORDER BY received_at, id LIMIT ${q.limit}`);
    return { data: rows };
  });

  app.get('/v1/notifications/summary', async () =>
    pool.one(sql.type(Summary)`
      SELECT count(*)::int AS notifications, coalesce(sum(deliveries), 0)::int AS deliveries,
             count(*) FILTER (WHERE deliveries > 1)::int AS duplicates
      FROM notifications`),
  );

  app.get('/_sandbox/settings', async () => settings);
  app.put('/_sandbox/settings', async (request, reply) => {
    const parsed = Settings.safeParse(request.body ?? {});
    if (!parsed.success) return reply.code(400).send(problem(400, 'invalid_request', parsed.error.message));
    Object.assign(settings, parsed.data);
    return settings;
  });
  app.post('/_sandbox/reset', async () => {
    await pool.query(sql.unsafe`TRUNCATE notifications`);
    return { status: 'reset' };
  });
  return app;
}
