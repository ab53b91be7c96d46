import { randomUUID } from 'node:crypto';
import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { recordAudit } from '../../lib/audit';
import {
  changedPins,
  cutoffProblem,
  defaultCutoff,
  monthDate,
  SETTLEMENT_CODE_VERSION,
  samePins,
  type Pins,
} from '../../domain/royalties/pins';
import type { Policy } from '../../domain/royalties/policy';
import {
  RoyaltiesFailure,
  type Decision,
  type FrozenRun,
  type RunKind,
  type RunStatus,
  type SettlementInput,
} from '../../workflows/royalties/contract';

/**
 * A run's life in PostgreSQL: frozen (pins, kind, what it supersedes), concluded (held, awaiting approval
 * or verified), decided (approved, rejected, carried forward), reminded, or ended (canceled, superseded).
 * Each step is one transaction guarded by the run's current status, so a retried step changes nothing.
 */

const ts = z.union([z.number(), z.string()]).transform((v) => new Date(v).toISOString());

export const RunRow = z.object({
  run_id: z.string(),
  month: z.string(),
  status: z.string(),
  origin: z.string(),
  kind: z.string(),
  workflow_id: z.string().nullable(),
  rerun: z.number(),
  ingestion_cutoff: ts,
  rate_version: z.number(),
  policy_version: z.number().nullable(),
  code_version: z.number().nullable(),
  adjustments_through: ts.nullable(),
  snapshot_run_id: z.string().nullable(),
  verifies_run_id: z.string().nullable(),
  supersedes_run_id: z.string().nullable(),
  started_by: z.string(),
  snapshot_sha256: z.string().nullable(),
  statement_sha256: z.string().nullable(),
  created_at: ts,
});
export type RunRow = z.infer<typeof RunRow>;

export const RUN_COLUMNS = sql.fragment`
  run_id::text AS run_id, to_char(month, 'YYYY-MM') AS month, status, origin, kind, workflow_id, rerun,
  ingestion_cutoff, rate_version, policy_version, code_version, adjustments_through,
  snapshot_run_id::text AS snapshot_run_id, verifies_run_id::text AS verifies_run_id,
  supersedes_run_id::text AS supersedes_run_id, started_by, snapshot_sha256, statement_sha256, created_at`;

export function pinsOf(r: RunRow): Pins {
  return {
    month: r.month,
    ingestionCutoff: r.ingestion_cutoff,
    rateVersion: r.rate_version,
    policyVersion: r.policy_version as number,
    codeVersion: r.code_version as number,
    adjustmentsThrough: r.adjustments_through as string,
  };
}

export async function loadRun(db: CommonQueryMethods, runId: string): Promise<RunRow> {
  return db.one(sql.type(RunRow)`SELECT ${RUN_COLUMNS} FROM settlement_runs WHERE run_id = ${runId}`);
}

const PolicyRow = z.object({
  policy_version: z.number(),
  min_play_seconds: z.number(),
  min_trailing_streams: z.number(),
  trailing_months: z.number(),
  bot_rule: z.enum(['none', 'short-play-bursts']),
  bot_short_play_seconds: z.number(),
  bot_window_seconds: z.number(),
  bot_min_short_plays: z.number(),
  rounding: z.literal('largest-remainder'),
});

export async function loadPolicy(db: CommonQueryMethods, version: number): Promise<Policy> {
  const p = await db.one(sql.type(PolicyRow)`
    SELECT policy_version, min_play_seconds, min_trailing_streams, trailing_months, bot_rule,
           bot_short_play_seconds, bot_window_seconds, bot_min_short_plays, rounding
    FROM royalty_policies WHERE policy_version = ${version}`);
  return {
    policyVersion: p.policy_version,
    minPlaySeconds: p.min_play_seconds,
    minTrailingStreams: p.min_trailing_streams,
    trailingMonths: p.trailing_months,
    botRule: p.bot_rule,
    botShortPlaySeconds: p.bot_short_play_seconds,
    botWindowSeconds: p.bot_window_seconds,
    botMinShortPlays: p.bot_min_short_plays,
    rounding: p.rounding,
  };
}

/** Statuses a run may still leave; the rest are final. */
const OPEN: RunStatus[] = ['running', 'held', 'awaiting_approval'];
/** A run whose pins a re-run starts from: the month's latest that finished computing. */
const COMPUTED: RunStatus[] = [
  'held',
  'awaiting_approval',
  'approved',
  'rejected',
  'superseded',
  'carried_forward',
];
const ACCEPTED: RunStatus[] = ['approved', 'carried_forward'];

export type FreezeOutcome = FrozenRun | { refused: RoyaltiesFailure; reason: string };

function frozenOf(r: RunRow, supersededWorkflowIds: string[]): FrozenRun {
  return {
    runId: r.run_id,
    kind: r.kind as RunKind,
    pins: pinsOf(r),
    snapshotRunId: r.snapshot_run_id as string,
    verifiesRunId: r.verifies_run_id,
    supersedesRunId: r.supersedes_run_id,
    supersededWorkflowIds,
    status: r.status as RunStatus,
  };
}

export function createRunActivities(deps: { pool: DatabasePool }) {
  const { pool } = deps;

  /**
   * Freezes a run: its pins (the re-run's from the month's latest computed run, then its repin), its kind
   * and what it supersedes, in one transaction under the month's lock. Open runs it replaces become
   * superseded in the same transaction. Idempotent by workflow ID.
   */
  async function freezeSettlement(input: SettlementInput & { workflowId: string }): Promise<FreezeOutcome> {
    return pool.transaction(async (tx) => {
      await tx.query(
        sql.unsafe`SELECT pg_advisory_xact_lock(hashtextextended(${`royalty-settlement:${input.month}`}, 11))`,
      );
      const existing = await tx.maybeOne(
        sql.type(RunRow)`SELECT ${RUN_COLUMNS} FROM settlement_runs WHERE workflow_id = ${input.workflowId}`,
      );
      if (existing) {
        const superseded = await tx.anyFirst(sql.type(z.object({ workflow_id: z.string() }))`
          SELECT workflow_id FROM settlement_runs WHERE superseded_by = ${existing.run_id} AND workflow_id IS NOT NULL`);
        return frozenOf(existing, [...superseded]);
      }
      const runs = await tx.any(sql.type(RunRow)`
        SELECT ${RUN_COLUMNS} FROM settlement_runs WHERE month = ${monthDate(input.month)}::date
        ORDER BY created_at DESC, rerun DESC`);
      if (runs.some((r) => r.status === 'running')) {
        return {
          refused: RoyaltiesFailure.RunInProgress,
          reason: `a settlement of ${input.month} is still computing; re-run it when it has finished`,
        };
      }
      const pinsBase = runs.find(
        (r) => r.kind !== 'verification' && COMPUTED.includes(r.status as RunStatus),
      );
      const accepted = runs.find((r) => ACCEPTED.includes(r.status as RunStatus));

      const latestRates = await tx.maybeOneFirst(sql.type(z.object({ v: z.number().nullable() }))`
        SELECT max(rate_version) AS v FROM royalty_rate_versions WHERE published_at IS NOT NULL`);
      const latestPolicy = await tx.maybeOneFirst(sql.type(z.object({ v: z.number().nullable() }))`
        SELECT max(policy_version) AS v FROM royalty_policies`);
      const inherited = pinsBase?.origin === 'workflow' ? pinsOf(pinsBase) : undefined;
      const now = new Date().toISOString();
      const pins: Pins = {
        month: input.month,
        ingestionCutoff:
          input.repin?.ingestionCutoff ??
          inherited?.ingestionCutoff ??
          new Date(defaultCutoff(input.month, input.latenessHours)).toISOString(),
        rateVersion: input.repin?.rateVersion ?? inherited?.rateVersion ?? latestRates ?? 0,
        policyVersion: input.repin?.policyVersion ?? inherited?.policyVersion ?? latestPolicy ?? 0,
        codeVersion: SETTLEMENT_CODE_VERSION,
        adjustmentsThrough: inherited?.adjustmentsThrough ?? now,
      };
      const badCutoff = cutoffProblem(input.month, Date.parse(pins.ingestionCutoff));
      if (badCutoff) return { refused: RoyaltiesFailure.InvalidCutoff, reason: badCutoff };
      const rateOk = await tx.exists(sql.unsafe`
        SELECT 1 FROM royalty_rate_versions WHERE rate_version = ${pins.rateVersion} AND published_at IS NOT NULL`);
      if (!rateOk) {
        return {
          refused: RoyaltiesFailure.UnknownRateVersion,
          reason: `rate version ${pins.rateVersion} does not exist or is not published`,
        };
      }
      const policyOk = await tx.exists(
        sql.unsafe`SELECT 1 FROM royalty_policies WHERE policy_version = ${pins.policyVersion}`,
      );
      if (!policyOk)
        return {
          refused: RoyaltiesFailure.UnknownPolicyVersion,
          reason: `policy version ${pins.policyVersion} does not exist`,
        };

      const runId: string = input.runId ?? randomUUID();
      let kind: RunKind = 'settlement';
      let snapshotRunId = runId;
      let verifiesRunId: string | null = null;
      let supersedesRunId: string | null = pinsBase?.run_id ?? null;
      if (inherited && pinsBase?.snapshot_sha256 && samePins(inherited, pins)) {
        kind = 'verification';
        snapshotRunId = pinsBase.snapshot_run_id as string;
        verifiesRunId = pinsBase.run_id;
        supersedesRunId = null;
      } else if (accepted) {
        kind = 'correction';
        supersedesRunId = accepted.run_id;
      }
      const row = await tx.one(sql.type(RunRow)`
        INSERT INTO settlement_runs (run_id, month, ingestion_cutoff, rate_version, policy_version, code_version,
          adjustments_through, status, origin, kind, workflow_id, rerun, snapshot_run_id, verifies_run_id,
          supersedes_run_id, started_by, reason, idempotency_key, request_hash)
        VALUES (${runId}, ${monthDate(input.month)}::date, ${pins.ingestionCutoff}::timestamptz, ${pins.rateVersion},
          ${pins.policyVersion}, ${pins.codeVersion}, ${pins.adjustmentsThrough}::timestamptz, 'running', 'workflow',
          ${kind}, ${input.workflowId}, ${input.rerun}, ${snapshotRunId}, ${verifiesRunId}, ${supersedesRunId},
          ${input.startedBy}, ${input.reason ?? null}, ${input.idempotencyKey ?? null}, ${input.requestHash ?? null})
        RETURNING ${RUN_COLUMNS}`);
      let superseded: readonly string[] = [];
      if (kind !== 'verification') {
        superseded = await tx.anyFirst(sql.type(z.object({ workflow_id: z.string() }))`
          UPDATE settlement_runs
          SET status = 'superseded', superseded_by = ${runId}, updated_at = now(),
              status_reason = ${`superseded by run ${runId} (${input.workflowId})`}
          WHERE month = ${monthDate(input.month)}::date AND status IN ('awaiting_approval', 'held')
            AND kind <> 'verification' AND workflow_id IS NOT NULL
          RETURNING workflow_id`);
      }
      await recordAudit(tx, {
        actor: `workflow:${input.workflowId}`,
        action: 'royalties.settlement.frozen',
        subjectType: 'settlement_run',
        subjectId: runId,
        entryKey: `royalties:frozen:${input.workflowId}`,
        details: { month: input.month, kind, pins, startedBy: input.startedBy, supersedes: supersedesRunId },
      });
      return frozenOf(row, [...superseded]);
    });
  }

  /**
   * After payouts and the statement: counts what holds the run, cross-checks against what the month
   * already paid (5B: more than 1 % apart is listed), sums the totals, compares with the run it
   * supersedes, and moves the run to held, awaiting_approval or (a verification) verified.
   */
  async function concludeSettlement(runId: string): Promise<{
    status: RunStatus;
    reproduced: boolean | null;
    exceptions: number;
  }> {
    return pool.transaction(async (tx) => {
      const run = await tx.one(
        sql.type(RunRow)`SELECT ${RUN_COLUMNS} FROM settlement_runs WHERE run_id = ${runId} FOR UPDATE`,
      );
      const current = await tx.one(
        sql.type(
          z.object({ reproduced: z.boolean().nullable(), exceptions_count: z.number().nullable() }),
        )`SELECT reproduced, exceptions_count FROM settlement_runs WHERE run_id = ${runId}`,
      );
      if (run.status !== 'running') {
        return {
          status: run.status as RunStatus,
          reproduced: current.reproduced,
          exceptions: current.exceptions_count ?? 0,
        };
      }
      const accepted = await tx.maybeOneFirst(sql.type(z.object({ run_id: z.string() }))`
        SELECT run_id::text AS run_id FROM settlement_runs
        WHERE month = ${monthDate(run.month)}::date AND status IN ('approved', 'carried_forward') AND run_id <> ${runId}
        ORDER BY decided_at DESC NULLS LAST, created_at DESC LIMIT 1`);
      let crossCheck: Record<string, unknown> = { against: null, flagged: 0 };
      if (accepted) {
        const flagged = await tx.oneFirst(sql.type(z.object({ n: z.number() }))`
          WITH now_owed AS (SELECT artist_id, currency, exact_amount, amount FROM artist_payouts WHERE run_id = ${runId}),
               paid AS (SELECT artist_id, currency, amount FROM artist_payouts WHERE run_id = ${accepted}),
               divergent AS (
                 SELECT coalesce(n.artist_id, p.artist_id) AS artist_id, coalesce(n.currency, p.currency) AS currency,
                        coalesce(n.exact_amount, 0) AS owed, coalesce(p.amount, 0) AS paid
                 FROM now_owed n FULL JOIN paid p ON p.artist_id = n.artist_id AND p.currency = n.currency
                 WHERE abs(coalesce(p.amount, 0) - coalesce(n.exact_amount, 0)) > 0.005
                   AND (coalesce(n.exact_amount, 0) = 0
                        OR abs(coalesce(p.amount, 0) - n.exact_amount) / n.exact_amount > 0.01)
               ),
               written AS (
                 INSERT INTO settlement_exceptions (run_id, kind, subject, artist_id, currency, plays, holds, detail)
                 SELECT ${runId}, 'payment_divergence', artist_id || '/' || currency, artist_id, currency, 0, false,
                        'paid ' || paid || ' ' || currency || ' for this month; this run owes ' || round(owed, 2) || ' ' || currency
                 FROM divergent
                 ON CONFLICT DO NOTHING
                 RETURNING 1
               )
          SELECT count(*)::int AS n FROM written`);
        crossCheck = { against: accepted, flagged };
      }
      const holds = await tx.oneFirst(sql.type(z.object({ n: z.number() }))`
        SELECT count(*)::int AS n FROM settlement_exceptions WHERE run_id = ${runId} AND holds`);
      const totals = await tx.oneFirst(sql.type(z.object({ totals: z.unknown() }))`
        SELECT coalesce(jsonb_agg(t ORDER BY t.currency), '[]'::jsonb) AS totals FROM (
          SELECT currency::text AS currency, count(*)::int AS artists, sum(lines)::int AS lines,
                 sum(plays)::bigint AS plays, sum(amount)::text AS amount, sum(adjustment)::text AS adjustment,
                 sum(amount + adjustment)::text AS payable
          FROM artist_payouts WHERE run_id = ${runId} GROUP BY currency) t`);
      let diff: Record<string, unknown> | null = null;
      if (run.supersedes_run_id) {
        const before = await loadRun(tx, run.supersedes_run_id);
        const currencies = await tx.oneFirst(sql.type(z.object({ c: z.unknown() }))`
          SELECT coalesce(jsonb_agg(d ORDER BY d.currency), '[]'::jsonb) AS c FROM (
            SELECT coalesce(n.currency, o.currency)::text AS currency,
                   sum(coalesce(o.amount, 0))::text AS before, sum(coalesce(n.amount, 0))::text AS after,
                   sum(coalesce(n.amount, 0) - coalesce(o.amount, 0))::text AS delta,
                   count(*) FILTER (WHERE n.amount IS DISTINCT FROM o.amount)::int AS artists_changed
            FROM (SELECT artist_id, currency, amount FROM artist_payouts WHERE run_id = ${runId}) n
            FULL JOIN (SELECT artist_id, currency, amount FROM artist_payouts WHERE run_id = ${run.supersedes_run_id}) o
              ON o.artist_id = n.artist_id AND o.currency = n.currency
            GROUP BY 1) d`);
        diff = {
          against: run.supersedes_run_id,
          changedPins: before.origin === 'workflow' ? changedPins(pinsOf(before), pinsOf(run)) : ['imported'],
          currencies,
        };
      }
      let reproduced: boolean | null = null;
      let status: RunStatus = holds > 0 ? 'held' : 'awaiting_approval';
      if (run.kind === 'verification') {
        const verified = await loadRun(tx, run.verifies_run_id as string);
        reproduced = verified.statement_sha256 !== null && verified.statement_sha256 === run.statement_sha256;
        status = 'verified';
      }
      await tx.query(sql.unsafe`
        UPDATE settlement_runs
        SET status = ${status}, totals = ${sql.jsonb(totals as never)}, cross_check = ${sql.jsonb(crossCheck as never)},
            diff = ${diff ? sql.jsonb(diff as never) : null}, exceptions_count = ${holds}, reproduced = ${reproduced},
            status_reason = ${holds > 0 && status === 'held' ? `${holds} exceptions hold the run` : null},
            updated_at = now()
        WHERE run_id = ${runId} AND status = 'running'`);
      return { status, reproduced, exceptions: holds };
    });
  }

  /**
   * A finance decision. Approval: the run becomes approved (a correction: carried_forward, its money
   * difference against the month's accepted run becoming adjustments of the next open month), and
   * corrections aimed at this month that it did not include move on to the next one. The database
   * refuses an approver who started the run. Idempotent: a decided run answers with its decision.
   */
  async function decideSettlement(d: {
    runId: string;
    decision: 'approve' | 'reject';
    by: string;
    reason?: string;
  }): Promise<Decision | { refused: RoyaltiesFailure; reason: string }> {
    return pool.transaction(async (tx) => {
      const run = await tx.one(
        sql.type(RunRow)`SELECT ${RUN_COLUMNS} FROM settlement_runs WHERE run_id = ${d.runId} FOR UPDATE`,
      );
      const decided = z.object({
        decided_by: z.string().nullable(),
        decided_at: ts.nullable(),
        status: z.string(),
      });
      const already = await tx.one(
        sql.type(
          decided,
        )`SELECT decided_by, decided_at, status FROM settlement_runs WHERE run_id = ${d.runId}`,
      );
      const done: RunStatus[] = ['approved', 'carried_forward', 'rejected'];
      if (done.includes(run.status as RunStatus) && already.decided_by === d.by) {
        return {
          runId: d.runId,
          status: run.status as RunStatus,
          decidedBy: d.by,
          decidedAt: already.decided_at as string,
        };
      }
      if (d.decision === 'approve' && run.status === 'held') {
        return {
          refused: RoyaltiesFailure.RunHeld,
          reason: `run ${d.runId} is held by exceptions: fix the data and re-run the month, or reject the run`,
        };
      }
      const expected = d.decision === 'approve' ? ['awaiting_approval'] : ['awaiting_approval', 'held'];
      if (!expected.includes(run.status)) {
        return {
          refused: RoyaltiesFailure.NotAwaitingApproval,
          reason: `run ${d.runId} is ${run.status}`,
        };
      }
      if (d.decision === 'approve' && d.by === run.started_by) {
        return {
          refused: RoyaltiesFailure.SameApprover,
          reason: 'a run is approved by a finance user other than the one who started it',
        };
      }
      const status: RunStatus =
        d.decision === 'reject' ? 'rejected' : run.kind === 'correction' ? 'carried_forward' : 'approved';
      const next = sql.fragment`(
        SELECT min(m)::date FROM generate_series(${monthDate(run.month)}::date + interval '1 month',
                                                 ${monthDate(run.month)}::date + interval '120 months', interval '1 month') m
        WHERE NOT EXISTS (SELECT 1 FROM settlement_runs a WHERE a.month = m::date AND a.status = 'approved'))`;
      if (status === 'carried_forward') {
        await tx.query(sql.unsafe`
          INSERT INTO settlement_adjustments (source_run_id, corrected_run_id, origin_month, artist_id, currency, amount, target_month)
          SELECT ${d.runId}, ${run.supersedes_run_id}, ${monthDate(run.month)}::date,
                 coalesce(n.artist_id, o.artist_id), coalesce(n.currency, o.currency),
                 coalesce(n.amount, 0) - coalesce(o.amount, 0), ${next}
          FROM (SELECT artist_id, currency, amount FROM artist_payouts WHERE run_id = ${d.runId}) n
          FULL JOIN (SELECT artist_id, currency, amount FROM artist_payouts WHERE run_id = ${run.supersedes_run_id}) o
            ON o.artist_id = n.artist_id AND o.currency = n.currency
          WHERE coalesce(n.amount, 0) <> coalesce(o.amount, 0)
          ON CONFLICT DO NOTHING`);
      }
      if (status === 'approved') {
        await tx.query(sql.unsafe`
          UPDATE settlement_adjustments SET target_month = ${next}
          WHERE target_month = ${monthDate(run.month)}::date AND created_at > ${run.adjustments_through}::timestamptz`);
      }
      const at = await tx.oneFirst(sql.type(z.object({ decided_at: ts }))`
        UPDATE settlement_runs
        SET status = ${status}, decided_by = ${d.by}, decided_at = now(), updated_at = now(),
            status_reason = ${d.reason ?? null}
        WHERE run_id = ${d.runId}
        RETURNING decided_at`);
      await recordAudit(tx, {
        actor: `workflow:${run.workflow_id}`,
        action: `royalties.settlement.${status}`,
        subjectType: 'settlement_run',
        subjectId: d.runId,
        entryKey: `royalties:decided:${d.runId}`,
        details: { month: run.month, by: d.by, kind: run.kind, reason: d.reason ?? null },
      });
      return { runId: d.runId, status, decidedBy: d.by, decidedAt: at };
    });
  }

  /** A run waiting too long: escalated, and an audit entry for the reminder (one per reminder number). */
  async function remindApprovers(r: { runId: string; reminder: number }): Promise<void> {
    await pool.transaction(async (tx) => {
      const run = await loadRun(tx, r.runId);
      if (!['awaiting_approval', 'held'].includes(run.status)) return;
      await tx.query(sql.unsafe`
        UPDATE settlement_runs SET reminded_at = now(), escalated = true, updated_at = now()
        WHERE run_id = ${r.runId} AND status IN ('awaiting_approval', 'held')`);
      await recordAudit(tx, {
        actor: `workflow:${run.workflow_id}`,
        action: 'royalties.settlement.reminder',
        subjectType: 'settlement_run',
        subjectId: r.runId,
        entryKey: `royalties:reminder:${r.runId}:${r.reminder}`,
        details: { month: run.month, status: run.status, reminder: r.reminder },
      });
    });
  }

  /**
   * A run that ends without a decision: canceled (from Temporal) or superseded; a final state stays. By
   * workflow ID, so a cancellation that came before the freeze finished still finds its run (or none).
   */
  async function endSettlement(e: {
    workflowId: string;
    status: 'canceled' | 'superseded' | 'failed';
    reason: string;
  }): Promise<RunStatus | null> {
    const row = await pool.maybeOneFirst(sql.type(z.object({ status: z.string() }))`
      UPDATE settlement_runs SET status = ${e.status}, status_reason = ${e.reason}, updated_at = now()
      WHERE workflow_id = ${e.workflowId} AND status = ANY(${sql.array(OPEN, 'text')})
      RETURNING status`);
    if (row) return row as RunStatus;
    const now = await pool.maybeOneFirst(sql.type(z.object({ status: z.string() }))`
      SELECT status FROM settlement_runs WHERE workflow_id = ${e.workflowId}`);
    return (now as RunStatus | null) ?? null;
  }

  return { freezeSettlement, concludeSettlement, decideSettlement, remindApprovers, endSettlement };
}
