import { createHash, randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from '@sinclair/typebox';
import {
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, defineSearchAttributeKey } from '@temporalio/common';
import type { FastifyRequest } from 'fastify';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { Principal } from '../auth/scopes';
import type { PlanCatalog } from '../../domain/billing/plans';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  PaymentDeclinedError,
  ValidationError,
} from '../../lib/errors';
import { TEST_METHODS, type PaymentProvider } from '../../domain/billing/payments';
import type { subscription } from '../../workflows';
import {
  cancelSubscription,
  changePlan,
  paymentMethodUpdated,
  subscriptionState,
  type SubscriptionView,
} from '../../workflows/billing/contract';
import { idempotencyKey, startOnce } from '../lib/start';
import { IdempotencyHeaders, Problem } from '../schemas';

/**
 * Payment methods and subscriptions. Subscriptions are owned by their workflow: this API starts it,
 * asks it (query) and tells it (updates, which answer the caller); it never writes a subscription row.
 * A listener acts on their own subscription only; service and operator scopes act on any.
 */
export interface BillingApiDeps {
  temporal: Client;
  pool: DatabasePool;
  provider: PaymentProvider;
  plans: PlanCatalog;
}

const USER_ID = defineSearchAttributeKey('CadenzaUserId', 'KEYWORD');
const SUBSCRIPTION_ID = defineSearchAttributeKey('CadenzaSubscriptionId', 'KEYWORD');
const uuid = { format: 'uuid' } as const;
const nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

const View = Type.Object(
  {
    subscriptionId: Type.String(uuid),
    userId: Type.String(uuid),
    status: Type.Union(
      ['pending', 'trialing', 'active', 'past_due', 'expired', 'canceled'].map((s) => Type.Literal(s)),
    ),
    plan: nullable(Type.String()),
    priceMinor: Type.Union([Type.Integer(), Type.Null()], { description: 'minor units (cents)' }),
    currency: nullable(Type.String()),
    pendingPlan: nullable(Type.String({ description: 'a downgrade that starts with the next period' })),
    periodIndex: Type.Integer(),
    periodStart: nullable(Type.String({ format: 'date-time' })),
    periodEnd: nullable(Type.String({ format: 'date-time' })),
    cancelAtPeriodEnd: Type.Boolean(),
    nextChargeAt: nullable(Type.String({ format: 'date-time' })),
    nextChargeMinor: Type.Union([Type.Integer(), Type.Null()]),
    graceUntil: nullable(Type.String({ format: 'date-time' })),
    lastDeclineCode: nullable(Type.String()),
    paymentMethodId: Type.String(),
  },
  { title: 'Subscription' },
);

function problems<T extends Record<number, TSchema>>(ok: T) {
  const p = Type.Ref(Problem);
  return { ...ok, 400: p, 401: p, 402: p, 403: p, 404: p, 409: p, 429: p, 503: p };
}
const IdParams = Type.Object({ id: Type.String(uuid) });

const MethodOwner = z.object({ user_id: z.string(), status: z.string() });

/** Listeners act for themselves; services and operators name the user. */
function actingUser(principal: Principal, userId: string | undefined): string {
  const listenerOnly = !principal.scopes.some((s) => s === 'service' || s === 'operator');
  if (listenerOnly) {
    if (userId && userId !== principal.sub) throw new ForbiddenError('A listener acts only for themselves.');
    return principal.sub;
  }
  if (!userId)
    throw new ValidationError('userId is required for service and operator tokens.', [
      { field: 'body.userId', message: 'required' },
    ]);
  return userId;
}

/** The same caller and Idempotency-Key always name the same subscription; otherwise a new one. */
function subscriptionIdFor(principal: Principal, key: string | undefined): string {
  if (!key) return randomUUID();
  const h = createHash('sha256').update(`${principal.sub}\n${key}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16] as string, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Turns a refused update into the problem the caller can act on. */
function updateProblem(err: unknown): unknown {
  if (!(err instanceof WorkflowUpdateFailedError)) return err;
  const cause = err.cause;
  const message = cause?.message ?? 'The subscription refused the change.';
  const type = cause instanceof ApplicationFailure ? cause.type : undefined;
  if (type === 'PaymentDeclined') return new PaymentDeclinedError(message);
  if (type === 'UnknownPlan') return new ValidationError(message, [{ field: 'body.plan', message }]);
  if (type === 'SubscriptionEnded') return new ConflictError(message, 'subscription-ended');
  return new ConflictError(message);
}

export const billingRoutes: FastifyPluginAsyncTypebox<BillingApiDeps> = async (app, deps) => {
  const { temporal, pool, provider, plans } = deps;
  const handle = (id: string): WorkflowHandle<typeof subscription> =>
    temporal.workflow.getHandle(`subscription-${id}`);

  async function userExists(userId: string): Promise<void> {
    const found = await pool.exists(
      sql.unsafe`SELECT 1 FROM users WHERE user_id = ${userId} AND erased_at IS NULL`,
    );
    if (!found) throw new NotFoundError(`No user ${userId}.`);
  }

  /** The subscription's current view, if the caller may see it (a listener's own only; else 404). */
  async function visible(request: FastifyRequest, id: string): Promise<SubscriptionView> {
    let view: SubscriptionView;
    try {
      view = await handle(id).query(subscriptionState);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new NotFoundError(`No subscription ${id}.`);
      throw err;
    }
    const p = request.principal;
    const any = p.scopes.some((s) => s === 'service' || s === 'operator');
    if (!any && view.userId !== p.sub) throw new NotFoundError(`No subscription ${id}.`);
    return view;
  }

  async function update<T>(request: FastifyRequest, id: string, send: () => Promise<T>): Promise<T> {
    const view = await visible(request, id);
    if (view.status === 'expired' || view.status === 'canceled') {
      throw new ConflictError(`The subscription is ${view.status}.`, 'subscription-ended');
    }
    return send().catch((err: unknown) => {
      throw updateProblem(err);
    });
  }

  app.post(
    '/v1/payment-methods',
    {
      config: { scopes: ['listener', 'service', 'operator'] },
      schema: {
        tags: ['billing'],
        summary: 'Tokenise a payment method (sandbox provider: by test-method name)',
        description: `Test methods: ${TEST_METHODS.join(', ')}. Tokens stay in Cadenza; card numbers never reach it.`,
        body: Type.Object(
          {
            testMethod: Type.Union(TEST_METHODS.map((m) => Type.Literal(m))),
            userId: Type.Optional(Type.String(uuid)),
          },
          { additionalProperties: false },
        ),
        response: problems({
          201: Type.Object({
            paymentMethodId: Type.String(uuid),
            userId: Type.String(uuid),
            provider: Type.String(),
            brand: Type.String(),
            last4: Type.String(),
            expMonth: Type.Integer(),
            expYear: Type.Integer(),
          }),
        }),
      },
    },
    async (request, reply) => {
      const userId = actingUser(request.principal, request.body.userId);
      await userExists(userId);
      const method = await provider.tokenizeTestMethod(request.body.testMethod);
      const paymentMethodId = await pool.oneFirst(sql.type(z.object({ payment_method_id: z.string() }))`
        INSERT INTO payment_methods (user_id, provider, provider_token, brand, last4, exp_month, exp_year)
        VALUES (${userId}, ${provider.name}, ${method.token}, ${method.brand}, ${method.last4},
          ${method.expMonth}, ${method.expYear})
        RETURNING payment_method_id`);
      return reply.code(201).send({
        paymentMethodId,
        userId,
        provider: provider.name,
        brand: method.brand,
        last4: method.last4,
        expMonth: method.expMonth,
        expYear: method.expYear,
      });
    },
  );

  /** A payment method of this user that can be charged. */
  async function ownMethod(userId: string, paymentMethodId: string): Promise<void> {
    const row = await pool.maybeOne(sql.type(MethodOwner)`
      SELECT user_id, status FROM payment_methods WHERE payment_method_id = ${paymentMethodId}`);
    if (!row || row.user_id !== userId || row.status !== 'active') {
      throw new ValidationError(`Payment method ${paymentMethodId} is not an active method of this user.`, [
        { field: 'body.paymentMethodId', message: 'unknown, detached, or another user’s' },
      ]);
    }
  }

  app.post(
    '/v1/subscriptions',
    {
      config: { scopes: ['listener', 'service', 'operator'] },
      schema: {
        tags: ['billing'],
        summary: 'Subscribe a user to a plan (starts the subscription workflow)',
        headers: IdempotencyHeaders,
        body: Type.Object(
          {
            plan: Type.String({ pattern: '^[a-z][a-z0-9_-]{1,40}$' }),
            paymentMethodId: Type.String(uuid),
            trialDays: Type.Optional(Type.Integer({ minimum: 0, maximum: 90 })),
            userId: Type.Optional(Type.String(uuid)),
          },
          { additionalProperties: false },
        ),
        response: problems({
          202: Type.Object({
            subscriptionId: Type.String(uuid),
            workflowId: Type.String(),
            runId: Type.String(),
            existing: Type.Boolean(),
            statusUrl: Type.String(),
          }),
        }),
      },
    },
    async (request, reply) => {
      const { plan, paymentMethodId, trialDays } = request.body;
      const terms = plans.get(plan);
      if (!terms) {
        throw new ValidationError(`Unknown plan "${plan}".`, [
          { field: 'body.plan', message: `one of ${plans.names().join(', ')}` },
        ]);
      }
      const userId = actingUser(request.principal, request.body.userId);
      await userExists(userId);
      await ownMethod(userId, paymentMethodId);
      const subscriptionId = subscriptionIdFor(
        request.principal,
        idempotencyKey(request.headers['idempotency-key']),
      );
      const started = await startOnce<typeof subscription>(temporal, 'subscription', {
        workflowId: `subscription-${subscriptionId}`,
        taskQueue: 'billing',
        args: [{ start: { subscriptionId, userId, plan, paymentMethodId, trialDays, terms } }],
        typedSearchAttributes: [
          { key: USER_ID, value: userId },
          { key: SUBSCRIPTION_ID, value: subscriptionId },
        ],
      });
      const statusUrl = `/v1/subscriptions/${subscriptionId}`;
      return reply.code(202).header('location', statusUrl).send({
        subscriptionId,
        workflowId: started.workflowId,
        runId: started.runId,
        existing: started.existing,
        statusUrl,
      });
    },
  );

  app.get(
    '/v1/subscriptions/:id',
    {
      config: { scopes: ['listener', 'service', 'operator'] },
      schema: {
        tags: ['billing'],
        summary: 'A subscription: state, period, next charge, grace deadline',
        params: IdParams,
        response: problems({ 200: View }),
      },
    },
    async (request) => visible(request, request.params.id),
  );

  app.post(
    '/v1/subscriptions/:id/cancel',
    {
      config: { scopes: ['listener', 'service', 'operator'] },
      schema: {
        tags: ['billing'],
        summary: 'Cancel at the end of the paid period (default) or now (no refund)',
        params: IdParams,
        body: Type.Object({ atPeriodEnd: Type.Boolean({ default: true }) }, { additionalProperties: false }),
        response: problems({ 200: View }),
      },
    },
    async (request) =>
      update(request, request.params.id, () =>
        handle(request.params.id).executeUpdate(cancelSubscription, {
          args: [{ atPeriodEnd: request.body.atPeriodEnd }],
        }),
      ),
  );

  app.post(
    '/v1/subscriptions/:id/plan',
    {
      config: { scopes: ['listener', 'service', 'operator'] },
      schema: {
        tags: ['billing'],
        summary: 'Change plan: upgrades now with a prorated charge, downgrades at the next period',
        params: IdParams,
        body: Type.Object(
          { plan: Type.String({ pattern: '^[a-z][a-z0-9_-]{1,40}$' }) },
          { additionalProperties: false },
        ),
        response: problems({
          200: Type.Object({
            plan: Type.String(),
            effective: Type.Union([Type.Literal('now'), Type.Literal('next_period')]),
            effectiveAt: Type.String({ format: 'date-time' }),
            prorationMinor: Type.Integer({ description: 'charged now, minor units' }),
            subscription: View,
          }),
        }),
      },
    },
    async (request) =>
      update(request, request.params.id, () =>
        handle(request.params.id).executeUpdate(changePlan, { args: [{ plan: request.body.plan }] }),
      ),
  );

  app.put(
    '/v1/subscriptions/:id/payment-method',
    {
      config: { scopes: ['listener', 'service', 'operator'] },
      schema: {
        tags: ['billing'],
        summary: 'Use another payment method; in grace the overdue charge is retried at once',
        params: IdParams,
        body: Type.Object({ paymentMethodId: Type.String(uuid) }, { additionalProperties: false }),
        response: problems({ 200: View }),
      },
    },
    async (request) => {
      const view = await visible(request, request.params.id);
      await ownMethod(view.userId, request.body.paymentMethodId);
      return update(request, request.params.id, () =>
        handle(request.params.id).executeUpdate(paymentMethodUpdated, {
          args: [{ paymentMethodId: request.body.paymentMethodId }],
        }),
      );
    },
  );
};
