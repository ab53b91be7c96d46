import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { isGrpcDeadlineError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { ConflictError, NotFoundError, ValidationError } from '../../lib/errors';
import { cancelSubscription, subscriptionIdOf } from '../../workflows/billing/contract';
import { isStoreOutage, problemFromFailure } from '../problems';
import type { PageTokens } from '../lib/page-token';
import { Problem, withProblems } from '../schemas';

const STATUSES = [
  'Running',
  'Completed',
  'Failed',
  'Canceled',
  'Terminated',
  'ContinuedAsNew',
  'TimedOut',
] as const;
const statusName = (code: number | null | undefined) =>
  (temporal.api.enums.v1.WorkflowExecutionStatus[code ?? 0] ?? 'UNSPECIFIED').replace(
    'WORKFLOW_EXECUTION_STATUS_',
    '',
  );

const Execution = Type.Object({
  workflowId: Type.String(),
  runId: Type.String(),
  type: Type.String(),
  status: Type.String({
    description: 'RUNNING, COMPLETED, FAILED, CANCELED, TERMINATED, CONTINUED_AS_NEW or TIMED_OUT',
  }),
  taskQueue: Type.Optional(Type.String()),
  startTime: Type.String({ format: 'date-time' }),
  closeTime: Type.Optional(Type.String({ format: 'date-time' })),
});

const Detail = Type.Intersect([
  Execution,
  Type.Object({
    historyLength: Type.Integer(),
    result: Type.Optional(Type.Unknown({ description: 'the workflow result, when completed' })),
    failure: Type.Optional(Type.Object({ message: Type.String(), cause: Type.Optional(Type.String()) })),
  }),
]);

/**
 * How long a subscription's cancel waits for the workflow to answer (its update) before falling back to
 * the cancellation request: well inside any client's patience for one API call.
 */
export const SUBSCRIPTION_CANCEL_WAIT_MS = 5_000;

const WorkflowId = Type.Object({ id: Type.String({ minLength: 1, maxLength: 400 }) });

const toIso = (d: Date | undefined) => d?.toISOString();

/** Generic run inspection for operators: describe, list (visibility), cancel. */
export const workflowRoutes: FastifyPluginAsyncTypebox<{ temporal: Client; pageTokens: PageTokens }> = async (
  app,
  { temporal: client, pageTokens },
) => {
  const handleOf = (id: string) => client.workflow.getHandle(id);
  const notFound = (id: string) => (err: unknown) => {
    if (err instanceof WorkflowNotFoundError) throw new NotFoundError(`No workflow with ID ${id}.`);
    throw err;
  };

  app.get(
    '/workflows/:id',
    {
      config: { scopes: ['operator'] },
      schema: {
        tags: ['workflows'],
        summary: 'Describe a workflow run',
        params: WorkflowId,
        response: withProblems({ 200: Detail }),
      },
    },
    async (request) => {
      const { id } = request.params;
      const handle = handleOf(id);
      const d = await handle.describe().catch(notFound(id));
      const out: Static<typeof Detail> = {
        workflowId: d.workflowId,
        runId: d.runId,
        type: d.type,
        status: d.status.name,
        taskQueue: d.taskQueue,
        startTime: d.startTime.toISOString(),
        closeTime: toIso(d.closeTime),
        historyLength: d.historyLength,
      };
      if (d.status.name === 'COMPLETED') out.result = await client.workflow.getHandle(id, d.runId).result();
      if (d.status.name === 'FAILED' || d.status.name === 'TIMED_OUT' || d.status.name === 'TERMINATED') {
        await client.workflow
          .getHandle(id, d.runId)
          .result()
          .catch((err: Error) => {
            out.failure = {
              message: err.message,
              cause: err.cause instanceof Error ? err.cause.message : undefined,
            };
          });
      }
      return out;
    },
  );

  app.get(
    '/workflows',
    {
      config: { scopes: ['operator'] },
      schema: {
        tags: ['workflows'],
        summary: 'List workflow runs (Temporal visibility), newest first',
        querystring: Type.Object({
          type: Type.Optional(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_]{0,99}$' })),
          status: Type.Optional(Type.Union(STATUSES.map((s) => Type.Literal(s)))),
          pageSize: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
          pageToken: Type.Optional(
            Type.String({
              maxLength: 4096,
              pattern: '^[A-Za-z0-9_-]*$',
              description: 'the nextPageToken of the previous page, as given (anything else answers 400)',
            }),
          ),
        }),
        response: withProblems({
          200: Type.Object({ workflows: Type.Array(Execution), nextPageToken: Type.Optional(Type.String()) }),
        }),
      },
    },
    async (request) => {
      const { type, status, pageSize, pageToken } = request.query;
      // Values are constrained by the schema's patterns and enum, so the visibility query cannot be escaped.
      const clauses = [type && `WorkflowType = '${type}'`, status && `ExecutionStatus = '${status}'`].filter(
        Boolean,
      );
      const res = await client.workflowService
        .listWorkflowExecutions({
          namespace: client.options.namespace,
          pageSize,
          query: clauses.join(' AND '),
          nextPageToken: pageToken ? pageTokens.open(pageToken) : undefined,
        })
        .catch((err: unknown) => {
          // A token of ours that Temporal no longer reads (another list, a server upgrade): start again.
          if (!pageToken || isStoreOutage(err)) throw err;
          throw new ValidationError(
            'pageToken is not a token this API gave out; start from the first page.',
            [{ field: 'querystring.pageToken', message: 'not a page token of this list' }],
          );
        });
      const tsToIso = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
        t?.seconds != null
          ? new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6)).toISOString()
          : undefined;
      return {
        workflows: res.executions.map((e) => ({
          workflowId: e.execution?.workflowId ?? '',
          runId: e.execution?.runId ?? '',
          type: e.type?.name ?? '',
          status: statusName(e.status),
          taskQueue: e.taskQueue ?? undefined,
          startTime: tsToIso(e.startTime) ?? '',
          closeTime: tsToIso(e.closeTime),
        })),
        nextPageToken: res.nextPageToken?.length ? pageTokens.seal(res.nextPageToken) : undefined,
      };
    },
  );

  app.post(
    '/workflows/:id/cancel',
    {
      config: {
        scopes: ['operator'],
        audit: {
          action: 'workflow.cancel',
          subject: (request) => ({ type: 'workflow', id: (request.params as { id: string }).id }),
        },
      },
      schema: {
        tags: ['workflows'],
        summary: 'Request cancellation of a running workflow',
        description:
          'A subscription is canceled now as business (the charge in flight finishes and is refunded, the ' +
          `end recorded): \`canceled\` when it answered within ${SUBSCRIPTION_CANCEL_WAIT_MS / 1000} s, ` +
          'else `cancel-requested` (it ends so when its worker takes the request); ' +
          '409 when it has already ended.',
        params: WorkflowId,
        response: withProblems({
          202: Type.Object({
            workflowId: Type.String(),
            status: Type.Union([Type.Literal('cancel-requested'), Type.Literal('canceled')]),
          }),
          409: Type.Ref(Problem),
        }),
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const subscriptionId = subscriptionIdOf(id);
      if (subscriptionId) {
        request.auditDetails = { subscriptionId };
        return reply.code(202).send({ workflowId: id, status: await cancelSubscriptionNow(id) });
      }
      const { status } = await handleOf(id).describe().catch(notFound(id));
      // Temporal accepts a cancellation of a closed run and does nothing: say so instead of 202.
      if (status.name !== 'RUNNING')
        throw new ConflictError(`Workflow ${id} has already closed (${status.name}).`, 'workflow-closed');
      await handleOf(id).cancel().catch(notFound(id));
      return reply.code(202).send({ workflowId: id, status: 'cancel-requested' as const });
    },
  );

  /**
   * A subscription's business cancel, now, by an operator — the path the Web UI's and the CLI's
   * cancellations take inside the workflow too. A subscription that does not answer in time (its worker
   * is down) gets the cancellation request, which it turns into the same cancel when it runs again.
   */
  async function cancelSubscriptionNow(id: string): Promise<'canceled' | 'cancel-requested'> {
    const handle = client.workflow.getHandle(id);
    try {
      await client.connection.withDeadline(Date.now() + SUBSCRIPTION_CANCEL_WAIT_MS, () =>
        handle.executeUpdate(cancelSubscription, { args: [{ atPeriodEnd: false, by: 'operator' }] }),
      );
      return 'canceled';
    } catch (err) {
      if (isGrpcDeadlineError(err)) {
        await handle.cancel();
        return 'cancel-requested';
      }
      if (err instanceof WorkflowNotFoundError) {
        const d = await handle.describe().catch(notFound(id));
        throw new ConflictError(
          `Workflow ${id} is ${d.status.name.toLowerCase()}; nothing to cancel.`,
          'workflow-closed',
        );
      }
      throw problemFromFailure(err);
    }
  }
};
