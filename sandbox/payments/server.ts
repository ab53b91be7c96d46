import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { sql, UniqueIntegrityConstraintViolationError, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { TEST_METHODS } from '../../domain/billing/payments';
import { METHODS } from './methods';

/**
 * The sandbox payment provider: a small Stripe-like HTTP service, like a real provider's test mode.
 * Test payment methods decide the outcome (see methods.ts and README "Payments sandbox"); every
 * money-moving request carries an Idempotency-Key, and a key is charged at most once:
 * - a key seen before answers with its first recorded result (same status, same body);
 * - a key reused with other parameters answers 409 idempotency_key_reused;
 * - a key whose first request is still being processed answers 409 idempotency_key_in_flight (retry).
 * Knobs (GET/PUT /_sandbox/settings): every POST /v1 request waits latencyMs, and with probability
 * failureRate answers 503 before doing anything; test_timeout holds its first answer for hangMs.
 */

export interface SandboxSettings {
  latencyMs: number;
  failureRate: number;
  hangMs: number;
}

export interface SandboxDeps {
  pool: DatabasePool;
  settings: SandboxSettings;
  log?: Logger;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: 'invalid_request_error' | 'idempotency_error' | 'api_error',
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const keyReused = () =>
  new ApiError(
    409,
    'idempotency_error',
    'idempotency_key_reused',
    'This Idempotency-Key was used before with other parameters',
  );
const keyInFlight = () =>
  new ApiError(
    409,
    'idempotency_error',
    'idempotency_key_in_flight',
    'A request with this Idempotency-Key is still being processed; retry later',
  );

function parse<S extends z.ZodTypeAny>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data as z.output<S>;
  const issue = result.error.issues[0];
  const param = issue?.path.join('.') ?? '';
  throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', `${param}: ${issue?.message}`, {
    param,
  });
}

function idempotencyKey(req: FastifyRequest): string {
  const key = req.headers['idempotency-key'];
  if (typeof key !== 'string' || key.length < 8 || key.length > 200)
    throw new ApiError(
      400,
      'invalid_request_error',
      'idempotency_key_invalid',
      'An Idempotency-Key header of 8 to 200 characters is required',
    );
  return key;
}

const newId = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;
const fingerprint = (...parts: (string | number)[]) =>
  createHash('sha256').update(JSON.stringify(parts)).digest('hex');

const Amount = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const AuthorizationBody = z.object({
  payment_method: z.string().min(1).max(100),
  currency: z
    .string()
    .regex(/^[A-Za-z]{3}$/, 'expected an ISO 4217 code')
    .transform((c) => c.toUpperCase()),
  metadata: z.record(z.string().max(500)).default({}),
});
const ChargeBody = AuthorizationBody.extend({ amount: Amount });
const RefundBody = z.object({ charge: z.string().min(1).max(100), amount: Amount });
const SettingsBody = z
  .object({
    latencyMs: z.number().int().min(0).max(60_000),
    failureRate: z.number().min(0).max(1),
    hangMs: z.number().int().min(0).max(600_000),
  })
  .partial()
  .strict();

// Schemas type the rows, and the pool checks every row against them: int8 arrives as an exact number.
const ChargeRow = z.object({
  id: z.string(),
  idempotency_key: z.string(),
  fingerprint: z.string(),
  kind: z.enum(['charge', 'authorization']),
  token: z.string(),
  amount_minor: z.number().int(),
  currency: z.string(),
  status: z.enum(['processing', 'server_error', 'succeeded', 'declined']),
  decline_code: z.string().nullable(),
  decline_kind: z.enum(['soft', 'hard']).nullable(),
  metadata: z.record(z.string()),
  attempts: z.number(),
  created: z.number(),
});
type ChargeRow = z.infer<typeof ChargeRow>;
const chargeColumns = sql.fragment`id, idempotency_key, fingerprint, kind, token, amount_minor, currency, status,
  decline_code, decline_kind, metadata, attempts, extract(epoch FROM created_at)::int AS created`;

const RefundRow = z.object({
  id: z.string(),
  fingerprint: z.string(),
  charge_id: z.string(),
  amount_minor: z.number().int(),
});

/** The answer a settled charge or authorization gives, first time and on every replay. */
function answer(row: ChargeRow): { status: number; body: Record<string, unknown> } {
  if (row.status === 'succeeded')
    return {
      status: 200,
      body: { id: row.id, status: 'succeeded', amount: Number(row.amount_minor), currency: row.currency },
    };
  return {
    status: 402,
    body: {
      id: row.id,
      status: 'declined',
      error: {
        type: 'card_error',
        code: row.decline_code,
        decline_kind: row.decline_kind,
        message: `The card was declined: ${row.decline_code}`,
      },
    },
  };
}

export function buildSandbox({ pool, settings: initial, log }: SandboxDeps) {
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger | undefined,
    logController: new LogController({ disableRequestLogging: true }), // a bench makes thousands of requests
  });
  const settings: SandboxSettings = { ...initial };
  // Held answers (test_timeout, latency) end early when the server closes, so a stop is not held up.
  const closing = new AbortController();
  const wait = (ms: number) =>
    ms > 0 ? sleep(ms, undefined, { signal: closing.signal }).catch(() => undefined) : Promise.resolve();
  app.addHook('preClose', async () => closing.abort());

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof ApiError)
      return reply
        .code(err.status)
        .send({ error: { type: err.type, code: err.code, message: err.message, ...err.extra } });
    const status = (err as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500)
      return reply.code(status).send({
        error: { type: 'invalid_request_error', code: 'invalid_request', message: (err as Error).message },
      });
    req.log.error({ err }, 'sandbox request failed');
    return reply
      .code(500)
      .send({ error: { type: 'api_error', code: 'internal_error', message: 'internal error' } });
  });

  app.get('/healthz', async (_req, reply) => {
    try {
      await pool.query(sql.unsafe`SELECT 1`);
      return { status: 'ok' };
    } catch {
      return reply.code(503).send({ status: 'database unavailable' });
    }
  });

  app.get('/_sandbox/settings', async () => settings);
  app.put('/_sandbox/settings', async (req) => {
    Object.assign(settings, parse(SettingsBody, req.body));
    req.log.info({ settings }, 'sandbox settings changed');
    return settings;
  });
  app.post('/_sandbox/reset', async () => {
    await pool.query(sql.unsafe`TRUNCATE refunds, charges, payment_methods`);
    return { reset: true };
  });

  /**
   * Takes the key for this request, or finds its settled result. Exactly one request owns a key at a
   * time: the unique key decides the first, a conditional UPDATE any retry of a key that answered 503.
   */
  async function claim(
    key: string,
    kind: ChargeRow['kind'],
    body: z.output<typeof AuthorizationBody> & { amount: number },
  ): Promise<{ row: ChargeRow; owned: boolean }> {
    const print = fingerprint(kind, body.payment_method, body.amount, body.currency);
    const inserted = await pool.maybeOne(sql.type(ChargeRow)`
      INSERT INTO charges (id, idempotency_key, fingerprint, kind, token, amount_minor, currency, metadata, status)
      VALUES (${newId(kind === 'charge' ? 'ch' : 'au')}, ${key}, ${print}, ${kind}, ${body.payment_method},
              ${body.amount}, ${body.currency}, ${sql.jsonb(body.metadata)}, 'processing')
      ON CONFLICT (idempotency_key) DO NOTHING
      RETURNING ${chargeColumns}`);
    if (inserted) return { row: inserted, owned: true };
    const seen = await pool.maybeOne(
      sql.type(ChargeRow)`SELECT ${chargeColumns} FROM charges WHERE idempotency_key = ${key}`,
    );
    if (!seen) throw keyInFlight(); // reset between the two statements
    if (seen.fingerprint !== print) throw keyReused();
    if (seen.status === 'succeeded' || seen.status === 'declined') return { row: seen, owned: false };
    // A key that answered 503, or one whose request died mid-way, is taken over by this retry.
    const retaken = await pool.maybeOne(sql.type(ChargeRow)`
      UPDATE charges SET status = 'processing', attempts = attempts + 1, claimed_at = now()
      WHERE idempotency_key = ${key}
        AND (status = 'server_error' OR (status = 'processing' AND claimed_at < now() - interval '10 seconds'))
      RETURNING ${chargeColumns}`);
    if (retaken) return { row: retaken, owned: true };
    throw keyInFlight();
  }

  async function chargeOrAuthorize(
    req: FastifyRequest,
    kind: ChargeRow['kind'],
    body: z.output<typeof AuthorizationBody> & { amount: number },
  ) {
    const key = idempotencyKey(req);
    const method = await pool.maybeOneFirst(
      sql.type(z.object({ test_method: z.enum(TEST_METHODS) }))`
        SELECT test_method FROM payment_methods WHERE token = ${body.payment_method}`,
    );
    if (!method)
      throw new ApiError(
        404,
        'invalid_request_error',
        'resource_missing',
        `No such payment_method: ${body.payment_method}`,
        { param: 'payment_method' },
      );
    const { row, owned } = await claim(key, kind, body);
    if (!owned) return { ...answer(row), replayed: true };

    const behaviour = METHODS[method].behaviour;
    if (behaviour.kind === 'fail_then_succeed' && row.attempts <= behaviour.failures) {
      await pool.query(sql.unsafe`UPDATE charges SET status = 'server_error' WHERE id = ${row.id}`);
      throw new ApiError(503, 'api_error', 'server_error', `Simulated provider failure ${row.attempts}`);
    }
    const declined = behaviour.kind === 'decline' ? behaviour : undefined;
    const settled = await pool.one(sql.type(ChargeRow)`
      UPDATE charges
      SET status = ${declined ? 'declined' : 'succeeded'},
          decline_code = ${declined?.code ?? null}, decline_kind = ${declined?.retry ?? null}
      WHERE id = ${row.id}
      RETURNING ${chargeColumns}`);
    // The charge is recorded; the answer is lost to a client that gives up first.
    if (behaviour.kind === 'hang' && row.attempts === 1) await wait(settings.hangMs);
    return { ...answer(settled), replayed: false };
  }

  // The provider's API proper; the knobs apply to its money-moving calls, not to the inspection ones.
  void app.register(async (v1) => {
    v1.addHook('onRequest', async (req, reply) => {
      if (req.method !== 'POST') return;
      await wait(settings.latencyMs);
      if (Math.random() < settings.failureRate)
        return reply.code(503).send({
          error: { type: 'api_error', code: 'server_error', message: 'Simulated provider failure' },
        });
    });

    v1.post('/v1/payment_methods', async (req, reply) => {
      const { test_method } = parse(
        z.object({
          test_method: z.string().refine((m) => m in METHODS, {
            message: `unknown test method; one of ${TEST_METHODS.join(', ')}`,
          }),
        }),
        req.body,
      );
      const card = METHODS[test_method as keyof typeof METHODS];
      const token = newId('pm');
      await pool.query(sql.unsafe`
        INSERT INTO payment_methods (token, test_method, brand, last4, exp_month, exp_year)
        VALUES (${token}, ${test_method}, ${card.brand}, ${card.last4}, ${card.expMonth}, ${card.expYear})`);
      return reply.code(201).send({
        id: token,
        test_method,
        brand: card.brand,
        last4: card.last4,
        exp_month: card.expMonth,
        exp_year: card.expYear,
      });
    });

    v1.post('/v1/charges', async (req, reply) => {
      const result = await chargeOrAuthorize(req, 'charge', parse(ChargeBody, req.body));
      return reply
        .code(result.status)
        .header('idempotent-replayed', String(result.replayed))
        .send(result.body);
    });

    v1.post('/v1/authorizations', async (req, reply) => {
      const body = parse(AuthorizationBody, req.body);
      const result = await chargeOrAuthorize(req, 'authorization', { ...body, amount: 0 });
      return reply
        .code(result.status)
        .header('idempotent-replayed', String(result.replayed))
        .send(result.body);
    });

    v1.post('/v1/refunds', async (req, reply) => {
      const key = idempotencyKey(req);
      const body = parse(RefundBody, req.body);
      const print = fingerprint('refund', body.charge, body.amount);
      try {
        const refund = await pool.transaction(async (tx) => {
          // The charge row lock serialises refunds of one charge, so the remainder check holds.
          const charge = await tx.maybeOne(
            sql.type(ChargeRow)`SELECT ${chargeColumns} FROM charges WHERE id = ${body.charge} FOR UPDATE`,
          );
          const seen = await tx.maybeOne(
            sql.type(RefundRow)`SELECT id, fingerprint, charge_id, amount_minor FROM refunds
              WHERE idempotency_key = ${key}`,
          );
          if (seen) {
            if (seen.fingerprint !== print) throw keyReused();
            return { ...seen, replayed: true };
          }
          if (!charge)
            throw new ApiError(
              404,
              'invalid_request_error',
              'resource_missing',
              `No such charge: ${body.charge}`,
              {
                param: 'charge',
              },
            );
          if (charge.kind !== 'charge' || charge.status !== 'succeeded')
            throw new ApiError(
              400,
              'invalid_request_error',
              'charge_not_refundable',
              `${charge.id} is not a succeeded charge`,
            );
          const refunded = await tx.oneFirst(
            sql.type(z.object({ sum: z.number().int() }))`
              SELECT coalesce(sum(amount_minor), 0)::int8 AS sum FROM refunds WHERE charge_id = ${charge.id}`,
          );
          const remainder = charge.amount_minor - refunded;
          if (body.amount > remainder)
            throw new ApiError(
              400,
              'invalid_request_error',
              'amount_too_large',
              `Refund of ${body.amount} exceeds the ${remainder} left to refund on ${charge.id}`,
              { param: 'amount' },
            );
          const inserted = await tx.one(sql.type(RefundRow)`
            INSERT INTO refunds (id, idempotency_key, fingerprint, charge_id, amount_minor)
            VALUES (${newId('re')}, ${key}, ${print}, ${charge.id}, ${body.amount})
            RETURNING id, fingerprint, charge_id, amount_minor`);
          return { ...inserted, replayed: false };
        });
        return reply
          .header('idempotent-replayed', String(refund.replayed))
          .send({ id: refund.id, charge: refund.charge_id, amount: Number(refund.amount_minor) });
      } catch (err) {
        // The same key used at the same moment for a refund of another charge: the retry sorts it out.
        if (err instanceof UniqueIntegrityConstraintViolationError) throw keyInFlight();
        throw err;
      }
    });

    /** The recorded charges (never authorizations), optionally of one subscription, oldest first. */
    v1.get('/v1/charges', async (req) => {
      const q = parse(
        z.object({
          subscription_id: z.string().min(1).optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
        req.query,
      );
      const rows = await pool.any(sql.type(ChargeRow.extend({ amount_refunded: z.number().int() }))`
        SELECT ${chargeColumns},
               (SELECT coalesce(sum(r.amount_minor), 0)::int8 FROM refunds r WHERE r.charge_id = charges.id) AS amount_refunded
        FROM charges
        WHERE kind = 'charge' AND status IN ('succeeded', 'declined')
          ${q.subscription_id ? sql.fragment`AND metadata->>'subscription_id' = ${q.subscription_id}` : sql.fragment``}
        ORDER BY created_at, id
        LIMIT ${q.limit}`);
      return {
        data: rows.map((r) => ({
          id: r.id,
          status: r.status,
          amount: Number(r.amount_minor),
          amount_refunded: Number(r.amount_refunded),
          currency: r.currency,
          payment_method: r.token,
          idempotency_key: r.idempotency_key,
          decline_code: r.decline_code,
          attempts: r.attempts,
          metadata: r.metadata,
          created: r.created,
        })),
      };
    });

    /** Counts for benches: duplicates = (subscription, period) pairs with more than one successful charge. */
    v1.get('/v1/charges/summary', async (req) => {
      const q = parse(z.object({ subscription_id: z.string().min(1).optional() }), req.query);
      const only = q.subscription_id
        ? sql.fragment`AND metadata->>'subscription_id' = ${q.subscription_id}`
        : sql.fragment``;
      const counts = await pool.one(
        sql.type(z.object({ charges: z.number(), succeeded: z.number(), declined: z.number() }))`
          SELECT count(*)::int AS charges,
                 count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
                 count(*) FILTER (WHERE status = 'declined')::int AS declined
          FROM charges WHERE kind = 'charge' AND status IN ('succeeded', 'declined') ${only}`,
      );
      const periods = await pool.one(sql.type(z.object({ duplicates: z.number(), maxPerPeriod: z.number() }))`
        SELECT count(*) FILTER (WHERE n > 1)::int AS duplicates, coalesce(max(n), 0)::int AS "maxPerPeriod"
        FROM (SELECT count(*) AS n FROM charges
              WHERE kind = 'charge' AND status = 'succeeded'
                AND metadata->>'subscription_id' IS NOT NULL AND metadata->>'period' IS NOT NULL ${only}
              GROUP BY metadata->>'subscription_id', metadata->>'period') per_period`);
      return { ...counts, ...periods };
    });
  });

  return app;
}
