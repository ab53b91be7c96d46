import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type { DatabasePool } from 'slonik';
import type { billingReconciliation } from '../../workflows';
import {
  RECONCILIATION_WORKFLOW,
  TASK_QUEUE,
  reconciliationWorkflowId,
} from '../../workflows/billing/contract';
import { recallIdempotencyKey, rememberIdempotencyKey } from '../lib/idempotency';
import { idempotencyKey, startOnce } from '../lib/start';
import { IdempotencyHeaders, Started, withProblems } from '../schemas';

/**
 * Billing reconciliation on demand (it also runs daily on a schedule): the provider's charges and refunds
 * against payment_transactions, and subscription rows against their workflows. Operators only.
 */
export const billingReconciliationRoutes: FastifyPluginAsyncTypebox<{
  temporal: Client;
  pool: DatabasePool;
}> = async (app, { temporal, pool }) => {
  app.post(
    '/billing/reconciliations',
    {
      config: {
        scopes: ['operator'],
        audit: { action: 'billing.reconcile', subject: () => ({ type: 'workflow', id: 'new' }) },
      },
      schema: {
        tags: ['billing'],
        summary: 'Reconcile billing now (the daily schedule does the same)',
        description:
          'Compares the provider’s records of the last `lookbackHours` (default 72) with payment_transactions, ' +
          'and live subscription rows with their workflows; fixes are in audit_log and billing_mismatches, ' +
          'counts in the run’s result (GET the status URL).',
        headers: IdempotencyHeaders,
        body: Type.Object(
          { lookbackHours: Type.Optional(Type.Integer({ minimum: 1, maximum: 24 * 90 })) },
          { additionalProperties: false },
        ),
        response: withProblems({ 202: Started, 422: Type.Ref('Problem') }),
      },
    },
    async (request, reply) => {
      const keyed = {
        caller: request.principal.sub,
        route: 'billing.reconcile',
        key: idempotencyKey(request.headers['idempotency-key']),
        target: '-',
        body: request.body,
      };
      const runId =
        (await recallIdempotencyKey(pool, keyed)) ??
        (await rememberIdempotencyKey(pool, keyed, randomUUID()));
      const lookbackHours = request.body.lookbackHours;
      const started = await startOnce<typeof billingReconciliation>(temporal, RECONCILIATION_WORKFLOW, {
        workflowId: reconciliationWorkflowId(runId),
        taskQueue: TASK_QUEUE,
        args: [lookbackHours ? { lookbackMs: lookbackHours * 3_600_000 } : {}],
      });
      request.auditSubject = { type: 'workflow', id: started.workflowId };
      return reply.code(202).header('location', started.statusUrl).send(started);
    },
  );
};

/**
 * Reconciles one subscription's row against its workflow now (the API found its run closed while the
 * row is live); a repair already running is left to finish.
 */
export async function repairSubscription(temporal: Client, subscriptionId: string): Promise<void> {
  try {
    await temporal.workflow.start<typeof billingReconciliation>(RECONCILIATION_WORKFLOW, {
      workflowId: reconciliationWorkflowId(`subscription-${subscriptionId}`),
      taskQueue: TASK_QUEUE,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      args: [{ subscriptionId }],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}
