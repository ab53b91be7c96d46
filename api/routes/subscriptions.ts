import { createHash, randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from '@sinclair/typebox';
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { FastifyRequest } from 'fastify';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { Principal } from '../auth/scopes';
import type { PlanCatalog } from '../../domain/billing/plans';
import { ConflictError, NotFoundError, ValidationError } from '../../lib/errors';
import type { subscription } from '../../workflows';
import {
  SEARCH,
  SUBSCRIPTION_WORKFLOW,
  TASK_QUEUE,
  cancelSubscription,
  changePlan,
  paymentMethodUpdated,
  subscriptionState,
  subscriptionWorkflowId,
  type SubscriptionView,
} from '../../workflows/billing/contract';
import { actingUser, mustSee } from '../lib/acting';
import { problemFromFailure } from '../problems';
import { idempotencyKey, startOnce } from '../lib/start';
import { IdempotencyHeaders, Problem } from '../schemas';

/**
 * Payment methods and subscriptions. Subscriptions are owned by their workflow: this API starts it,
 * asks it (query) and tells it (updates, which answer the caller); it never writes a subscription row.
 * A listener acts on their own subscription only; service and operator scopes act on any.
 */
export interface SubscriptionApiDeps {
  temporal: Client;
  pool: DatabasePool;
  plans: PlanCatalog;
}

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

/** The same caller and Idempotency-Key always name the same subscription; otherwise a new one. */
function subscriptionIdFor(principal: Principal, key: string | undefined): string {
  if (!key) return randomUUID();
  const h = createHash('sha256').update(`${principal.sub}\n${key}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16] as string, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export const subscriptionRoutes: FastifyPluginAsyncTypebox<SubscriptionApiDeps> = async (app, deps) => {
  const { temporal, pool, plans } = deps;
  // The catalog is known when the routes are built: the schema names the plans, so the document does too.
  const PlanName = Type.Unsafe<string>({
    type: 'string',
    enum: plans.names(),
    description: 'a plan of the catalog',
  });
  const handle = (id: string): WorkflowHandle<typeof subscription> =>
    temporal.workflow.getHandle(subscriptionWorkflowId(id));

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
    mustSee(request.principal, view.userId, `subscription ${id}`);
    return view;
  }

  async function update<T>(request: FastifyRequest, id: string, send: () => Promise<T>): Promise<T> {
    const view = await visible(request, id);
    if (view.status === 'expired' || view.status === 'canceled') {
      throw new ConflictError(`The subscription is ${view.status}.`, 'subscription-ended');
    }
    return send().catch((err: unknown) => {
      throw problemFromFailure(err);
    });
  }

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
    '/subscriptions',
    {
      config: {
        scopes: ['listener', 'service', 'operator'],
        audit: { action: 'subscription.create', subject: () => ({ type: 'subscription', id: 'new' }) },
      },
      schema: {
        tags: ['subscriptions'],
        summary: 'Subscribe a user to a plan (starts the subscription workflow)',
        headers: IdempotencyHeaders,
        body: Type.Object(
          {
            plan: PlanName,
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
      const started = await startOnce<typeof subscription>(temporal, SUBSCRIPTION_WORKFLOW, {
        workflowId: subscriptionWorkflowId(subscriptionId),
        taskQueue: TASK_QUEUE,
        args: [{ start: { subscriptionId, userId, plan, paymentMethodId, trialDays, terms } }],
        typedSearchAttributes: [
          { key: SEARCH.userId, value: userId },
          { key: SEARCH.subscriptionId, value: subscriptionId },
        ],
      });
      const statusUrl = `/v1/subscriptions/${subscriptionId}`;
      request.auditSubject = { type: 'subscription', id: subscriptionId };
      request.auditDetails = { userId, plan, existing: started.existing };
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
    '/subscriptions/:id',
    {
      config: { scopes: ['listener', 'service', 'operator'] },
      schema: {
        tags: ['subscriptions'],
        summary: 'A subscription: state, period, next charge, grace deadline',
        params: IdParams,
        response: problems({ 200: View }),
      },
    },
    async (request) => visible(request, request.params.id),
  );

  app.post(
    '/subscriptions/:id/cancel',
    {
      config: {
        scopes: ['listener', 'service', 'operator'],
        audit: {
          action: 'subscription.cancel',
          subject: (request) => ({ type: 'subscription', id: (request.params as { id: string }).id }),
        },
      },
      schema: {
        tags: ['subscriptions'],
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
    '/subscriptions/:id/plan',
    {
      config: {
        scopes: ['listener', 'service', 'operator'],
        audit: {
          action: 'subscription.change_plan',
          subject: (request) => ({ type: 'subscription', id: (request.params as { id: string }).id }),
        },
      },
      schema: {
        tags: ['subscriptions'],
        summary: 'Change plan: upgrades now with a prorated charge, downgrades at the next period',
        params: IdParams,
        body: Type.Object({ plan: PlanName }, { additionalProperties: false }),
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
    '/subscriptions/:id/payment-method',
    {
      config: {
        scopes: ['listener', 'service', 'operator'],
        audit: {
          action: 'subscription.change_payment_method',
          subject: (request) => ({ type: 'subscription', id: (request.params as { id: string }).id }),
        },
      },
      schema: {
        tags: ['subscriptions'],
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
