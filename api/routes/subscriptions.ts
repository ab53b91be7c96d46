import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from '@sinclair/typebox';
import {
  isGrpcDeadlineError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import type { FastifyRequest } from 'fastify';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { PlanCatalog } from '../../domain/billing/plans';
import { days, isExclusive, planFamily } from '../../domain/billing/terms';
import {
  CadenzaError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  ValidationError,
} from '../../lib/errors';
import type { subscription } from '../../workflows';
import {
  SEARCH,
  SUBSCRIPTION_WORKFLOW,
  TASK_QUEUE,
  cancelSubscription,
  changePlan,
  paymentMethodUpdated,
  subscriptionWorkflowId,
  type SubscriptionView,
} from '../../workflows/billing/contract';
import { actingUser, actsForAnyone, mustSee } from '../lib/acting';
import { recallIdempotencyKey, rememberIdempotencyKey, type IdempotentRequest } from '../lib/idempotency';
import { problemFromFailure } from '../problems';
import {
  liveExclusiveSubscription,
  subscriptionById,
  subscriptionsOfUser,
  trialTaken,
} from '../queries/subscriptions';
import { idempotencyKey, startOnce } from '../lib/start';
import { IdempotencyHeaders, Problem } from '../schemas';
import { repairSubscription } from './billing-reconciliations';

/**
 * Payment methods and subscriptions. Subscriptions are owned by their workflow: this API starts it and
 * tells it (updates, which answer the caller); it reads the PostgreSQL projection the workflow keeps
 * current, never the workflow, and never writes a subscription row. A listener acts on their own
 * subscriptions only, and takes the plan's trial as it is (or none); service and operator scopes act on
 * any, and may grant another trial within the plan's bound.
 */
export interface SubscriptionApiDeps {
  temporal: Client;
  pool: DatabasePool;
  plans: PlanCatalog;
}

const uuid = { format: 'uuid' } as const;
const nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
/** How long the API waits for a subscription's answer to an update before saying it is busy. */
const UPDATE_DEADLINE_MS = 15_000;
/** How long a create waits for the workflow's own decision on the user's policies (then: 202, pending). */
const OPENING_WAIT_MS = 3000;

const View = Type.Object(
  {
    subscriptionId: Type.String(uuid),
    userId: Type.String(uuid),
    status: Type.Union(
      ['pending', 'trialing', 'active', 'past_due', 'expired', 'canceled'].map((s) => Type.Literal(s)),
      { description: 'pending: started, first payment not yet taken' },
    ),
    plan: nullable(Type.String()),
    priceMinor: nullable(Type.Integer({ description: 'minor units of the currency (cents)' })),
    currency: nullable(Type.String()),
    pendingPlan: nullable(Type.String({ description: 'a downgrade that starts with the next period' })),
    periodIndex: Type.Integer(),
    periodStart: nullable(Type.String({ format: 'date-time' })),
    periodEnd: nullable(Type.String({ format: 'date-time' })),
    cancelAtPeriodEnd: Type.Boolean(),
    nextChargeAt: nullable(Type.String({ format: 'date-time' })),
    nextChargeMinor: nullable(
      Type.Integer({ description: 'the next charge, with an announced price change' }),
    ),
    graceUntil: nullable(Type.String({ format: 'date-time' })),
    lastDeclineCode: nullable(Type.String()),
    paymentMethodId: Type.String(),
    entitled: Type.Optional(Type.Boolean({ description: 'grants premium now' })),
    paymentInFlight: Type.Optional(
      Type.Boolean({ description: 'a charge is being made; an update now says what it did to it' }),
    ),
    endedReason: Type.Optional(nullable(Type.String())),
  },
  { title: 'Subscription' },
);

function problems<T extends Record<number, TSchema>>(ok: T) {
  const p = Type.Ref(Problem);
  return { ...ok, 400: p, 401: p, 402: p, 403: p, 404: p, 409: p, 422: p, 429: p, 503: p };
}
const IdParams = Type.Object({ id: Type.String(uuid) });
const MethodOwner = z.object({ user_id: z.string(), status: z.string() });

/** The subscription is being set right by reconciliation (its run closed while its row is live). */
class RepairingError extends CadenzaError {
  constructor(id: string) {
    super(
      'subscription-repairing',
      503,
      'Subscription is being repaired',
      `The workflow of subscription ${id} has closed while the subscription is live; it is being reconciled. Try again in a few seconds.`,
    );
  }
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

  /**
   * The subscription as PostgreSQL shows it, if the caller may see it (a listener's own only; else 404).
   * Started but not yet written: the run's start input says whose it is, and it is pending.
   */
  async function visible(request: FastifyRequest, id: string): Promise<SubscriptionView> {
    const row = await subscriptionById(pool, id);
    if (row) {
      mustSee(request.principal, row.userId, `subscription ${id}`);
      const { adopted: _, ...view } = row;
      return view;
    }
    const described = await handle(id)
      .describe()
      .catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) throw new NotFoundError(`No subscription ${id}.`);
        throw err;
      });
    const owner = described.typedSearchAttributes.get(SEARCH.userId);
    if (!owner || described.status.name !== 'RUNNING') throw new NotFoundError(`No subscription ${id}.`);
    mustSee(request.principal, owner, `subscription ${id}`);
    return {
      subscriptionId: id,
      userId: owner,
      status: 'pending',
      plan: null,
      priceMinor: null,
      currency: null,
      pendingPlan: null,
      periodIndex: 0,
      periodStart: null,
      periodEnd: null,
      cancelAtPeriodEnd: false,
      nextChargeAt: null,
      nextChargeMinor: null,
      graceUntil: null,
      lastDeclineCode: null,
      paymentMethodId: '',
      entitled: false,
      paymentInFlight: true,
    };
  }

  /** Tells the subscription's workflow; its refusal becomes the caller's problem, its silence a 503. */
  async function update<T>(request: FastifyRequest, id: string, send: () => Promise<T>): Promise<T> {
    const view = await visible(request, id);
    if (view.status === 'expired' || view.status === 'canceled') {
      throw new ConflictError(`The subscription is ${view.status}.`, 'subscription-ended');
    }
    try {
      return await temporal.connection.withDeadline(Date.now() + UPDATE_DEADLINE_MS, send);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        // Its run closed (terminated, failed) while the row is live: reconciliation sets it right now.
        await repairSubscription(temporal, id);
        throw new RepairingError(id);
      }
      if (isGrpcDeadlineError(err)) {
        throw new CadenzaError(
          'subscription-busy',
          503,
          'Subscription did not answer in time',
          `Subscription ${id} did not answer within ${UPDATE_DEADLINE_MS / 1000} s (its worker may be down); the request may still take effect: read the subscription before retrying.`,
        );
      }
      throw problemFromFailure(err);
    }
  }

  /**
   * The workflow decides the user's policies again under a lock (two requests at once both pass the checks
   * above); its refusal, when it comes within a moment, is the caller's 409 too.
   */
  async function refusedByWorkflow(subscriptionId: string): Promise<void> {
    const deadline = Date.now() + OPENING_WAIT_MS;
    for (let wait = 20; Date.now() < deadline; wait = Math.min(wait * 2, 200)) {
      const row = await subscriptionById(pool, subscriptionId);
      if (row) {
        const reason = row.endedReason;
        if (row.status !== 'canceled' || !reason?.startsWith('refused')) return;
        const existing = /live subscription ([0-9a-f-]{36})/.exec(reason)?.[1];
        throw new CadenzaError(
          existing ? 'subscription-exists' : 'trial-used',
          409,
          existing ? 'A live subscription exists' : 'Trial already used',
          `Subscription ${subscriptionId} was ${reason}.`,
          existing ? { existing: { subscriptionId: existing, url: `/v1/subscriptions/${existing}` } } : {},
        );
      }
      await new Promise((r) => setTimeout(r, wait));
    }
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
        description:
          'A listener subscribes themselves and takes the plan’s trial (or none: trialDays 0); service and ' +
          'operator tokens name the user and may grant a trial up to the plan’s bound. One trial per user ' +
          'and plan family, and one live subscription per user unless the plan is an add-on (409 names ' +
          'the existing one; change its plan instead). The same Idempotency-Key with another request: 422.',
        headers: IdempotencyHeaders,
        body: Type.Object(
          {
            plan: PlanName,
            paymentMethodId: Type.String(uuid),
            trialDays: Type.Optional(
              Type.Integer({
                minimum: 0,
                maximum: 3650,
                description: 'listeners: 0 only (no trial); service/operator: up to the plan’s bound',
              }),
            ),
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
      if (trialDays !== undefined && trialDays > 0) {
        // A trial is the plan's to give; service and operator may grant another within its bound.
        if (!actsForAnyone(request.principal))
          throw new ForbiddenError(
            'A listener takes the plan’s trial as it is: send no trialDays (or 0 for none).',
          );
        const boundDays = Math.floor(Math.max(terms.maxTrialMs ?? 0, terms.trialMs) / days(1));
        if (trialDays > boundDays)
          throw new ValidationError(`Plan ${plan} grants trials of at most ${boundDays} days.`, [
            { field: 'body.trialDays', message: `at most ${boundDays}` },
          ]);
      }
      const keyed: IdempotentRequest = {
        caller: request.principal.sub,
        route: 'subscriptions.create',
        key: idempotencyKey(request.headers['idempotency-key']),
        target: userId,
        body: { plan, paymentMethodId, trialDays: trialDays ?? null },
      };
      let subscriptionId = await recallIdempotencyKey(pool, keyed);
      if (!subscriptionId) {
        await userExists(userId);
        await ownMethod(userId, paymentMethodId);
        if (isExclusive(terms)) {
          const live = await liveExclusiveSubscription(pool, userId);
          if (live)
            throw new CadenzaError(
              'subscription-exists',
              409,
              'A live subscription exists',
              `User ${userId} already has live subscription ${live}; change its plan (POST /v1/subscriptions/${live}/plan) instead.`,
              { existing: { subscriptionId: live, url: `/v1/subscriptions/${live}` } },
            );
        }
        const startsTrial = (trialDays ?? terms.trialMs / days(1)) > 0;
        if (startsTrial) {
          const taken = await trialTaken(pool, userId, planFamily(terms));
          if (taken)
            throw new CadenzaError(
              'trial-used',
              409,
              'Trial already used',
              `User ${userId} has had a ${planFamily(terms)} trial (subscription ${taken}); subscribe with trialDays 0 to start paying now.`,
              { trialSubscriptionId: taken },
            );
        }
        subscriptionId = await rememberIdempotencyKey(pool, keyed, randomUUID());
      }
      const started = await startOnce<typeof subscription>(temporal, SUBSCRIPTION_WORKFLOW, {
        workflowId: subscriptionWorkflowId(subscriptionId),
        taskQueue: TASK_QUEUE,
        args: [{ start: { subscriptionId, userId, plan, paymentMethodId, trialDays, terms } }],
        typedSearchAttributes: [
          { key: SEARCH.userId, value: userId },
          { key: SEARCH.subscriptionId, value: subscriptionId },
        ],
      });
      if (!started.existing) await refusedByWorkflow(subscriptionId);
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
    '/subscriptions',
    {
      config: { scopes: ['listener', 'service', 'operator'] },
      schema: {
        tags: ['subscriptions'],
        summary: 'A user’s subscriptions, newest first (from PostgreSQL)',
        description: 'Listeners see their own (userId optional); service and operator tokens name the user.',
        querystring: Type.Object(
          { userId: Type.Optional(Type.String(uuid)) },
          { additionalProperties: false },
        ),
        response: problems({ 200: Type.Object({ subscriptions: Type.Array(View) }) }),
      },
    },
    async (request) => {
      const userId = actingUser(request.principal, request.query.userId, { field: 'querystring.userId' });
      const rows = await subscriptionsOfUser(pool, userId);
      return { subscriptions: rows.map(({ adopted: _, ...view }) => view) };
    },
  );

  app.get(
    '/subscriptions/:id',
    {
      config: { scopes: ['listener', 'service', 'operator'] },
      schema: {
        tags: ['subscriptions'],
        summary: 'A subscription: state, period, next charge, grace deadline (from PostgreSQL)',
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
        description:
          'Answered at once, also while a charge is being made: then the subscription ends now and that ' +
          'charge, if it succeeds, is refunded in full. In grace or before the first payment it ends now.',
        params: IdParams,
        body: Type.Object({ atPeriodEnd: Type.Boolean({ default: true }) }, { additionalProperties: false }),
        response: problems({ 200: View }),
      },
    },
    async (request) => {
      const by = actsForAnyone(request.principal, ['operator']) ? 'operator' : 'customer';
      return update(request, request.params.id, () =>
        handle(request.params.id).executeUpdate(cancelSubscription, {
          args: [{ atPeriodEnd: request.body.atPeriodEnd, by }],
        }),
      );
    },
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
        description: 'Refused (409) while past due, or while a payment is being made (try again shortly).',
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
        description: 'A charge already being made continues on the previous method.',
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
