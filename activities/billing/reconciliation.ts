import { Context, log } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import pLimit from 'p-limit';
import { Counter, type Registry } from 'prom-client';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { fromMinor, toMinor } from '../../domain/billing/money';
import {
  CHARGE_KEY_METADATA,
  ProviderRequestError,
  type ChargeRecord,
  type PaymentProvider,
  type RefundRecord,
} from '../../domain/billing/payments';
import type { PlanCatalog } from '../../domain/billing/plans';
import { recordAudit } from '../../lib/audit';
import { subscriptionWorkflowId } from '../../workflows/billing/contract';
import { adoptRow, adoptionTerms, liveRows, type LiveRow } from './adoption';
import { writeSubscriptionChange } from './subscriptions';

/**
 * Reconciliation of billing: the provider's records against payment_transactions, and live subscription
 * rows against their workflows. Each mismatch is found once (billing_mismatches, keyed by what it is
 * about), fixed per policy, written to audit_log (with an entry key: a retried step audits once) and
 * counted in `cadenza_billing_reconciliation_mismatches_total`. Re-running finds nothing new.
 */
export interface ReconciliationDeps {
  pool: DatabasePool;
  provider: PaymentProvider;
  temporal: Client;
  plans: PlanCatalog;
  policy: {
    /** A charge no subscription accounts for: refunded, or only flagged for a person. */
    orphanCharges: 'refund' | 'flag';
    /** Charges younger than this are left to their workflows. */
    settleMs: number;
    /** The plan an adopted row of an unknown plan takes its period, grace and dunning from. */
    adoptTemplate: string;
  };
  /** Where the mismatch counter is registered (the worker's /metrics). */
  metrics?: Registry;
}

type Resolution = 'recorded' | 'refunded' | 'flagged' | 'closed' | 'adopted';

export interface PaymentsReconciled {
  chargesCompared: number;
  refundsCompared: number;
  mismatches: Record<string, number>;
}

export interface RowsReconciled {
  subscriptionsCompared: number;
  mismatches: Record<string, number>;
}

const PAGE = 500;

const Recorded = z.object({ provider_reference: z.string() });
const SubscriptionOfCharge = z.object({
  user_id: z.string(),
  period_index: z.number(),
  status: z.string(),
  payment_method_id: z.string().nullable(),
  currency: z.string(),
  period_recorded: z.boolean(),
});

/** What a charge's metadata says it paid for: period n, or the proration within period n. */
function purposeOf(
  charge: ChargeRecord,
): { subscriptionId: string; period: number; upgrade: boolean } | null {
  const subscriptionId = charge.metadata.subscription_id;
  const m = /^(\d+)(\/upgrade)?$/.exec(charge.metadata.period ?? '');
  if (!subscriptionId || !m) return null;
  return { subscriptionId, period: Number(m[1]), upgrade: Boolean(m[2]) };
}

export function createReconciliationActivities(deps: ReconciliationDeps) {
  const { pool, provider, temporal, plans, policy } = deps;
  const mismatchCounter = new Counter({
    name: 'cadenza_billing_reconciliation_mismatches_total',
    help: 'Billing mismatches reconciliation found, by kind and what was done',
    labelNames: ['kind', 'resolution'],
    registers: deps.metrics ? [deps.metrics] : [],
  });

  /** Records a mismatch once; true when it is new (then it is audited and counted). */
  async function found(
    runBy: string,
    m: {
      key: string;
      kind: string;
      resolution: Resolution;
      subscriptionId?: string | null;
      providerReference?: string | null;
      details: Record<string, unknown>;
    },
  ): Promise<boolean> {
    const fresh = await pool.maybeOneFirst(sql.type(z.object({ mismatch_key: z.string() }))`
      INSERT INTO billing_mismatches (mismatch_key, kind, subscription_id, provider_reference, resolution, details)
      VALUES (${m.key}, ${m.kind}, ${m.subscriptionId ?? null}, ${m.providerReference ?? null}, ${m.resolution},
              ${sql.jsonb(m.details as Parameters<typeof sql.jsonb>[0])})
      ON CONFLICT (mismatch_key) DO NOTHING RETURNING mismatch_key`);
    await recordAudit(pool, {
      actor: runBy,
      action: `billing.reconcile.${m.resolution}`,
      subjectType: m.subscriptionId ? 'subscription' : 'payment',
      subjectId: m.subscriptionId ?? m.providerReference ?? m.key,
      details: { kind: m.kind, mismatch: m.key, ...m.details },
      entryKey: `billing.reconcile:${m.key}`,
    });
    if (fresh) {
      mismatchCounter.inc({ kind: m.kind, resolution: m.resolution });
      log.warn('billing mismatch', { key: m.key, kind: m.kind, resolution: m.resolution });
    }
    return fresh !== null;
  }

  /** A payment the books lack, written under its own idempotency key (a later write by its workflow is a no-op). */
  async function writePayment(p: {
    key: string;
    userId: string;
    subscriptionId: string;
    paymentMethodId: string | null;
    kind: 'charge' | 'refund';
    amountMinor: number;
    currency: string;
    reference: string;
    refundOf?: string;
  }): Promise<void> {
    await pool.query(sql.unsafe`
      WITH fresh AS (
        INSERT INTO payment_idempotency_keys (idempotency_key, transaction_id, created_at)
        VALUES (${p.key}, gen_random_uuid(), now())
        ON CONFLICT (idempotency_key) DO NOTHING RETURNING transaction_id)
      INSERT INTO payment_transactions (transaction_id, created_at, user_id, subscription_id, payment_method_id,
        kind, amount, currency, status, idempotency_key, provider_reference, refund_of)
      SELECT transaction_id, now(), ${p.userId}, ${p.subscriptionId}, ${p.paymentMethodId}, ${p.kind},
        ${fromMinor(p.amountMinor, p.currency)}::numeric, ${p.currency}, 'succeeded', ${p.key}, ${p.reference},
        ${p.refundOf ?? null}
      FROM fresh`);
  }

  /** Successful charges the books lack: the period it paid was granted → recorded; otherwise an orphan. */
  async function unrecordedCharge(charge: ChargeRecord, runBy: string, tally: (k: string) => void) {
    const purpose = purposeOf(charge);
    const key = charge.metadata[CHARGE_KEY_METADATA] ?? `provider:${charge.reference}`;
    const row = purpose
      ? await pool.maybeOne(sql.type(SubscriptionOfCharge)`
          SELECT s.user_id, s.period_index, s.status, s.payment_method_id, s.currency,
            EXISTS (SELECT 1 FROM payment_transactions t
                    WHERE t.subscription_id = s.subscription_id AND t.kind = 'charge' AND t.status = 'succeeded'
                      AND t.idempotency_key LIKE ${`sub:${purpose.subscriptionId}:p${purpose.period}:a%`}) AS period_recorded
          FROM subscriptions s WHERE s.subscription_id = ${purpose.subscriptionId}`)
      : null;
    const base = {
      providerReference: charge.reference,
      subscriptionId: purpose && row ? purpose.subscriptionId : null,
      details: { key, amountMinor: charge.amountMinor, currency: charge.currency, metadata: charge.metadata },
    };
    // The subscription got the period this charge paid, and nothing else paid for it: the record was lost.
    if (purpose && row && !purpose.upgrade && row.period_index >= purpose.period && !row.period_recorded) {
      await writePayment({
        key,
        userId: row.user_id,
        subscriptionId: purpose.subscriptionId,
        paymentMethodId: row.payment_method_id,
        kind: 'charge',
        amountMinor: charge.amountMinor,
        currency: charge.currency,
        reference: charge.reference,
      });
      if (
        await found(runBy, {
          ...base,
          key: `charge:${charge.reference}`,
          kind: 'charge_unrecorded',
          resolution: 'recorded',
        })
      )
        tally('charge_unrecorded:recorded');
      return;
    }
    // Nothing accounts for it (a duplicate, a charge after the run was terminated, an unknown subscription).
    const remaining = charge.amountMinor - charge.refundedMinor;
    let refunded: { reference: string; amountMinor: number } | null = null;
    let refusal: string | null = null;
    if (policy.orphanCharges === 'refund' && remaining > 0) {
      try {
        refunded = await provider.refund({
          idempotencyKey: `reconcile-refund:${charge.reference}`,
          chargeReference: charge.reference,
          amountMinor: remaining,
        });
      } catch (err) {
        if (!(err instanceof ProviderRequestError)) throw err;
        refusal = `${err.code}: ${err.message}`;
      }
    }
    if (row && purpose) {
      const common = {
        userId: row.user_id,
        subscriptionId: purpose.subscriptionId,
        paymentMethodId: row.payment_method_id,
        currency: charge.currency,
      };
      await writePayment({
        ...common,
        key,
        kind: 'charge',
        amountMinor: charge.amountMinor,
        reference: charge.reference,
      });
      if (refunded)
        await writePayment({
          ...common,
          key: `reconcile-refund:${charge.reference}`,
          kind: 'refund',
          amountMinor: refunded.amountMinor,
          reference: refunded.reference,
          refundOf: key,
        });
    }
    const resolution: Resolution = refunded ? 'refunded' : 'flagged';
    const isNew = await found(runBy, {
      ...base,
      key: `charge:${charge.reference}`,
      kind: 'charge_orphan',
      resolution,
      details: { ...base.details, refund: refunded?.reference ?? null, refusal },
    });
    if (isNew) tally(`charge_orphan:${resolution}`);
  }

  return {
    /**
     * The provider's charges and refunds since `since` against payment_transactions, then Cadenza's
     * recorded charges against the provider's. Resumes from its last page after a retry.
     */
    async reconcilePayments({ since, runBy }: { since: number; runBy: string }): Promise<PaymentsReconciled> {
      const ctx = Context.current();
      const settledBefore = Date.now() - policy.settleMs;
      const resume = (ctx.info.heartbeatDetails ?? {}) as Partial<PaymentsReconciled & { after: string }>;
      const out: PaymentsReconciled = {
        chargesCompared: resume.chargesCompared ?? 0,
        refundsCompared: resume.refundsCompared ?? 0,
        mismatches: resume.mismatches ?? {},
      };
      const tally = (k: string) => (out.mismatches[k] = (out.mismatches[k] ?? 0) + 1);
      const seen = new Set<string>();

      for (let after = resume.after; ;) {
        const page = await provider.listCharges({ since, after, limit: PAGE });
        if (page.length === 0) break;
        const mine = page.filter((c) => c.outcome === 'succeeded' && c.metadata.subscription_id);
        for (const c of mine) seen.add(c.reference);
        const settled = mine.filter((c) => c.createdAt < settledBefore);
        const recorded = new Set(
          await pool.anyFirst(sql.type(Recorded)`
            SELECT provider_reference FROM payment_transactions
            WHERE kind = 'charge' AND status = 'succeeded'
              AND provider_reference = ANY(${sql.array(
                settled.map((c) => c.reference),
                'text',
              )})`),
        );
        for (const charge of settled) {
          if (!recorded.has(charge.reference)) await unrecordedCharge(charge, runBy, tally);
        }
        out.chargesCompared += settled.length;
        after = page.at(-1)?.reference;
        ctx.heartbeat({ ...out, after });
      }

      for (let after: string | undefined; ;) {
        const page: RefundRecord[] = await provider.listRefunds({ since, after, limit: PAGE });
        if (page.length === 0) break;
        const mine = page.filter((r) => r.chargeMetadata.subscription_id && r.createdAt < settledBefore);
        const recorded = new Set(
          await pool.anyFirst(sql.type(Recorded)`
            SELECT provider_reference FROM payment_transactions
            WHERE kind = 'refund' AND provider_reference = ANY(${sql.array(
              mine.map((r) => r.reference),
              'text',
            )})`),
        );
        for (const refund of mine.filter((r) => !recorded.has(r.reference))) {
          const subscriptionId = refund.chargeMetadata.subscription_id as string;
          const row = await pool.maybeOne(
            sql.type(
              z.object({ user_id: z.string(), payment_method_id: z.string().nullable() }),
            )`SELECT user_id, payment_method_id FROM subscriptions WHERE subscription_id = ${subscriptionId}`,
          );
          if (row)
            await writePayment({
              key: refund.idempotencyKey,
              userId: row.user_id,
              subscriptionId,
              paymentMethodId: row.payment_method_id,
              kind: 'refund',
              amountMinor: refund.amountMinor,
              currency: refund.currency,
              reference: refund.reference,
              refundOf: refund.chargeMetadata[CHARGE_KEY_METADATA],
            });
          const resolution: Resolution = row ? 'recorded' : 'flagged';
          const isNew = await found(runBy, {
            key: `refund:${refund.reference}`,
            kind: 'refund_unrecorded',
            resolution,
            subscriptionId: row ? subscriptionId : null,
            providerReference: refund.reference,
            details: { amountMinor: refund.amountMinor, charge: refund.chargeReference },
          });
          if (isNew) tally(`refund_unrecorded:${resolution}`);
        }
        out.refundsCompared += mine.length;
        after = page.at(-1)?.reference;
        ctx.heartbeat({ ...out, after: undefined });
      }

      // Charges the books hold as paid that the provider has no record of (within the same window; one
      // not listed is looked up by its key, as the provider's record may predate the window).
      const claimed = await pool.any(sql.type(
        z.object({
          provider_reference: z.string(),
          subscription_id: z.string(),
          idempotency_key: z.string(),
        }),
      )`
        SELECT provider_reference, subscription_id, idempotency_key FROM payment_transactions
        WHERE kind = 'charge' AND status = 'succeeded' AND amount > 0
          AND created_at >= to_timestamp(${since / 1000}) AND created_at < to_timestamp(${settledBefore / 1000})
          AND provider_reference IS NOT NULL AND provider_reference NOT IN ('none', 'free')`);
      for (const tx of claimed.filter((t) => !seen.has(t.provider_reference))) {
        if ((await provider.findCharge(tx.idempotency_key))?.reference === tx.provider_reference) continue;
        const isNew = await found(runBy, {
          key: `unknown-to-provider:${tx.provider_reference}`,
          kind: 'charge_unknown_to_provider',
          resolution: 'flagged',
          subscriptionId: tx.subscription_id,
          providerReference: tx.provider_reference,
          details: { key: tx.idempotency_key },
        });
        if (isNew) tally('charge_unknown_to_provider:flagged');
      }
      return out;
    },

    /**
     * Each live row against its workflow: running is right; a run that was terminated, canceled by older
     * code or closed otherwise while the row is live → the row is closed (canceled, premium recomputed,
     * the message sent); no run at all, or a failed one → the row is adopted by a new run.
     */
    async reconcileSubscriptionRows({
      subscriptionId,
      runBy,
    }: {
      subscriptionId?: string;
      runBy: string;
    }): Promise<RowsReconciled> {
      const ctx = Context.current();
      const resume = (ctx.info.heartbeatDetails ?? {}) as Partial<RowsReconciled & { after: string }>;
      const out: RowsReconciled = {
        subscriptionsCompared: resume.subscriptionsCompared ?? 0,
        mismatches: resume.mismatches ?? {},
      };
      const tally = (k: string) => (out.mismatches[k] = (out.mismatches[k] ?? 0) + 1);
      const limit = pLimit(8);
      for (let after = resume.after ?? '00000000-0000-0000-0000-000000000000'; ;) {
        const rows = await liveRows(pool, { after, limit: 200, subscriptionId });
        if (rows.length === 0) break;
        await Promise.all(rows.map((row) => limit(() => compareRow(row, runBy, tally))));
        out.subscriptionsCompared += rows.length;
        after = rows.at(-1)?.subscription_id as string;
        ctx.heartbeat({ ...out, after });
      }
      return out;
    },
  };

  async function compareRow(row: LiveRow, runBy: string, tally: (k: string) => void): Promise<void> {
    const workflowId = subscriptionWorkflowId(row.subscription_id);
    let closedAs: string;
    try {
      const d = await temporal.workflow.getHandle(workflowId).describe();
      if (d.status.name === 'RUNNING') return;
      closedAs = d.status.name;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      closedAs = 'NONE';
    }
    // Failed or timed out (a bug, since fixed), or no run at all: the subscription goes on in a new run.
    if (closedAs === 'NONE' || closedAs === 'FAILED' || closedAs === 'TIMED_OUT') {
      const reason =
        closedAs === 'NONE'
          ? 'adopted by reconciliation: no workflow'
          : `adopted by reconciliation: the run was ${closedAs.toLowerCase()}`;
      const started = await adoptRow({ temporal, plans, template: policy.adoptTemplate }, row, reason);
      if (started === 'started' && (await found(runBy, frozen(row, closedAs, 'adopted'))))
        tally('frozen_row:adopted');
      return;
    }
    // Terminated (no code could run), canceled by older code, or closed otherwise: the subscription ended.
    const reason = `closed by reconciliation: its run was ${closedAs.toLowerCase()} while it was ${row.status}`;
    const terms = adoptionTerms(row, plans, policy.adoptTemplate);
    await writeSubscriptionChange(pool, {
      subscriptionId: row.subscription_id,
      userId: row.user_id,
      version: row.state_version + 1,
      fromStatus: row.status,
      status: 'canceled',
      reason,
      terms: { ...terms, priceMinor: row.price_minor ?? toMinor(row.price, row.currency.trim()) },
      pendingPlan: null,
      periodIndex: row.period_index,
      periodStart: row.period_start_ms,
      periodEnd: row.period_end_ms,
      graceUntil: null,
      cancelAtPeriodEnd: false,
      paymentMethodId: row.payment_method_id ?? '',
      entitled: false,
      shown: {
        nextChargeAt: null,
        nextChargeMinor: null,
        lastDeclineCode: null,
        paymentInFlight: false,
        endedReason: reason,
      },
      message: { topic: 'subscription.canceled', data: { reason } },
    });
    if (await found(runBy, frozen(row, closedAs, 'closed'))) tally('frozen_row:closed');
  }

  function frozen(row: LiveRow, closedAs: string, resolution: Resolution) {
    return {
      key: `frozen:${row.subscription_id}:v${row.state_version}`,
      kind: 'frozen_row',
      resolution,
      subscriptionId: row.subscription_id,
      details: { run: closedAs, status: row.status, version: row.state_version },
    };
  }
}

export type ReconciliationActivities = ReturnType<typeof createReconciliationActivities>;
