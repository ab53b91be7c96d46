import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { toMinor } from '../../domain/billing/money';
import type { PlanCatalog } from '../../domain/billing/plans';
import type { PlanTerms } from '../../domain/billing/terms';
import type { subscription } from '../../workflows';
import {
  SEARCH,
  SUBSCRIPTION_WORKFLOW,
  TASK_QUEUE,
  subscriptionWorkflowId,
} from '../../workflows/billing/contract';

/**
 * Adoption: a live subscription row without a running workflow (rows from before workflows, like the
 * seed's; rows whose run failed or passed retention) gets a workflow that continues it as it stands —
 * status, period, payment method, price and the version it was written at. Used by `npm run
 * billing:adopt`, the seed, and reconciliation.
 */
export const LiveRow = z.object({
  subscription_id: z.string(),
  user_id: z.string(),
  plan: z.string(),
  status: z.enum(['pending', 'trialing', 'active', 'past_due']),
  price: z.string(),
  price_minor: z.number().nullable(),
  currency: z.string(),
  period_index: z.number(),
  period_start_ms: z.number(),
  period_end_ms: z.number(),
  payment_method_id: z.string().nullable(),
  state_version: z.number(),
});
export type LiveRow = z.infer<typeof LiveRow>;

export const liveRowColumns = sql.fragment`subscription_id, user_id, plan, status, price::text AS price,
  price_minor, currency, period_index,
  (extract(epoch FROM current_period_start) * 1000)::int8 AS period_start_ms,
  (extract(epoch FROM current_period_end) * 1000)::int8 AS period_end_ms,
  payment_method_id, state_version`;

/** Live rows after `after` (by ID), a page at a time; the ones never written by a workflow if asked. */
export function liveRows(
  pool: DatabasePool,
  opts: { after: string; limit: number; neverWritten?: boolean; subscriptionId?: string },
) {
  return pool.any(sql.type(LiveRow)`
    SELECT ${liveRowColumns} FROM subscriptions
    WHERE status IN ('pending', 'trialing', 'active', 'past_due') AND subscription_id > ${opts.after}
      ${opts.neverWritten ? sql.fragment`AND state_version = 0` : sql.fragment``}
      ${opts.subscriptionId ? sql.fragment`AND subscription_id = ${opts.subscriptionId}` : sql.fragment``}
    ORDER BY subscription_id LIMIT ${opts.limit}`);
}

/**
 * The terms an adopted row continues on: its plan from the catalog when that bills in the row's currency;
 * otherwise the template plan's period, grace and dunning with the row's own price and currency (a plan
 * from before the catalog, such as the seed's regional `premium-monthly`, keeps its price).
 */
export function adoptionTerms(row: LiveRow, plans: PlanCatalog, template: string): PlanTerms {
  const currency = row.currency.trim();
  const own = plans.get(row.plan);
  if (own && own.currency === currency) return own;
  const base = plans.get(template) ?? plans.get(plans.names()[0] as string);
  if (!base) throw new Error('the plan catalog is empty');
  return {
    ...base,
    plan: row.plan,
    family: undefined,
    priceMinor: row.price_minor ?? toMinor(row.price, currency),
    currency,
  };
}

export interface AdoptionDeps {
  temporal: Client;
  plans: PlanCatalog;
  /** The catalog plan whose period, grace and dunning a row of an unknown plan takes. */
  template: string;
}

/**
 * Starts the row's workflow (after a closed run of the same ID, if any, which it replaces). Answers
 * `running` when a run is there already: nothing is started twice.
 */
export async function adoptRow(
  { temporal, plans, template }: AdoptionDeps,
  row: LiveRow,
  reason: string,
): Promise<'started' | 'running'> {
  const terms = adoptionTerms(row, plans, template);
  try {
    await temporal.workflow.start<typeof subscription>(SUBSCRIPTION_WORKFLOW, {
      workflowId: subscriptionWorkflowId(row.subscription_id),
      taskQueue: TASK_QUEUE,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      args: [
        {
          start: {
            subscriptionId: row.subscription_id,
            userId: row.user_id,
            plan: terms.plan,
            paymentMethodId: row.payment_method_id ?? '',
            terms,
            adopt: {
              status: row.status,
              periodIndex: row.period_index,
              periodStart: row.period_start_ms,
              periodEnd: row.period_end_ms,
              version: row.state_version,
              reason,
            },
          },
        },
      ],
      typedSearchAttributes: [
        { key: SEARCH.userId, value: row.user_id },
        { key: SEARCH.subscriptionId, value: row.subscription_id },
      ],
    });
    return 'started';
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return 'running';
    throw err;
  }
}
