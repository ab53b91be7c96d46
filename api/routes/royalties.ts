import { createHash } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { FastifyRequest } from 'fastify';
import type { Client as Minio } from 'minio';
import type { DatabasePool } from 'slonik';
import { SETTLEMENT_MONTH_PATTERN, isMonth, monthEnd, cutoffProblem } from '../../domain/royalties/pins';
import { recordAudit } from '../../lib/audit';
import { bucketName } from '../../lib/clients/minio';
import type { Config } from '../../lib/config';
import {
  CadenzaError,
  ConflictError,
  NotFoundError,
  UnavailableError,
  ValidationError,
} from '../../lib/errors';
import type { royaltySettlement } from '../../workflows';
import {
  RoyaltiesFailure,
  SEARCH,
  SETTLEMENT_WORKFLOW,
  TASK_QUEUE,
  approveSettlement,
  rejectSettlement,
  settlementProgress,
  settlementWorkflowId,
  type Repin,
  type SettlementInput,
  type SettlementProgress,
} from '../../workflows/royalties/contract';
import { FAILURE_PROBLEMS, problemFromFailure } from '../problems';
import {
  currencyTotals,
  exceptionsOf,
  policy,
  runById,
  runDetail,
  runDiff,
  runsOfMonth,
  type RunSummaryRow,
} from '../queries/royalties';
import { idempotencyKey, startOnce, statusUrl } from '../lib/start';
import { IdempotencyHeaders, withProblems } from '../schemas';

/**
 * Monthly royalty settlement for finance: start a month, re-run it, read runs, fetch a statement, compare
 * two runs, approve or reject. Finance acts; operators read. Reads come from PostgreSQL (the projection
 * the workflow keeps); approvals and rejections go to the run's workflow as updates, which answer with
 * the decision or a refusal (same approver, not awaiting approval, held). Every action is audited.
 */
export interface RoyaltiesApiDeps {
  temporal: Client;
  pool: DatabasePool;
  minio?: Minio;
  config: Config;
}

const Uuid = Type.String({ format: 'uuid' });
/**
 * A month that can be settled: the schema states exactly what the handlers accept
 * (domain/royalties/pins.ts).
 */
const MonthParam = Type.String({
  pattern: SETTLEMENT_MONTH_PATTERN,
  description: 'YYYY-MM, 2000-01 to 2099-12',
});
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const Text = Type.String();
const Money = Type.String({ description: 'decimal text, exact' });

const Pins = Type.Object({
  month: Text,
  ingestionCutoff: Nullable(Type.String({ format: 'date-time' })),
  rateVersion: Type.Integer(),
  policyVersion: Type.Union([Type.Integer(), Type.Null()]),
  codeVersion: Type.Union([Type.Integer(), Type.Null()]),
  adjustmentsThrough: Nullable(Type.String({ format: 'date-time' })),
});

const RunSummary = Type.Object(
  {
    runId: Uuid,
    month: Text,
    workflowId: Nullable(Text),
    origin: Type.Union([Type.Literal('workflow'), Type.Literal('imported')]),
    kind: Text,
    rerun: Type.Integer(),
    status: Text,
    statusReason: Nullable(Text),
    pins: Pins,
    startedBy: Text,
    reason: Nullable(Text),
    createdAt: Text,
    decidedAt: Nullable(Text),
    decidedBy: Nullable(Text),
    supersedesRunId: Nullable(Text),
    supersededBy: Nullable(Text),
    verifiesRunId: Nullable(Text),
    statementSha256: Nullable(Text),
    reproduced: Type.Union([Type.Boolean(), Type.Null()]),
    exceptions: Type.Union([Type.Integer(), Type.Null()]),
    escalated: Type.Boolean(),
  },
  { title: 'SettlementRun' },
);

const CurrencyTotal = Type.Object({
  currency: Text,
  artists: Type.Integer(),
  lines: Type.Integer(),
  plays: Type.Integer(),
  amount: Money,
  adjustment: Money,
  payable: Money,
});

const RunView = Type.Intersect(
  [
    RunSummary,
    Type.Object({
      policy: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
      totals: Type.Array(CurrencyTotal),
      exceptionsList: Type.Array(
        Type.Object({
          kind: Text,
          subject: Text,
          artistId: Nullable(Text),
          trackId: Nullable(Text),
          country: Nullable(Text),
          currency: Nullable(Text),
          plays: Type.Integer(),
          holds: Type.Boolean(),
          detail: Text,
        }),
      ),
      snapshotRunId: Nullable(Text),
      snapshotSha256: Nullable(Text),
      snapshot: Type.Unknown({
        description: 'lines, plays, bot plays, plays below the threshold, unknown tracks',
      }),
      reaggregation: Type.Unknown({ description: 'a verification: ClickHouse re-aggregated and compared' }),
      diff: Type.Unknown({ description: 'totals against the run this one supersedes' }),
      crossCheck: Type.Unknown({ description: 'against what the month already paid (5B)' }),
      statementBytes: Type.Union([Type.Integer(), Type.Null()]),
      progress: Type.Unknown({ description: 'live, from the workflow, while it computes' }),
    }),
  ],
  { title: 'SettlementRunDetail' },
);

const StartedRun = Type.Object({
  runId: Uuid,
  month: Text,
  rerun: Type.Integer(),
  workflowId: Text,
  statusUrl: Text,
  runUrl: Text,
  existing: Type.Boolean(),
});

const Decision = Type.Object({
  runId: Uuid,
  status: Text,
  decidedBy: Text,
  decidedAt: Text,
});

function problems<T extends Record<number, ReturnType<typeof Type.Object>>>(ok: T) {
  return { ...withProblems(ok), 409: Type.Ref('Problem'), 422: Type.Ref('Problem') };
}

/** A run's ID from its workflow ID: starting the same month twice names the same run. */
export function runIdFor(workflowId: string): string {
  const h = createHash('sha256').update(`royalty-run:${workflowId}`).digest('hex');
  const variant = ((parseInt(h[16] as string, 16) & 3) | 8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const problemOf = (type: RoyaltiesFailure, detail: string) => {
  const p = FAILURE_PROBLEMS[type];
  return new CadenzaError(p.slug, p.status, p.title, detail, { failure: type });
};

function summary(r: RunSummaryRow): Static<typeof RunSummary> {
  return {
    runId: r.run_id,
    month: r.month,
    workflowId: r.workflow_id,
    origin: r.origin as 'workflow' | 'imported',
    kind: r.kind,
    rerun: r.rerun,
    status: r.status,
    statusReason: r.status_reason,
    pins: {
      month: r.month,
      ingestionCutoff: r.ingestion_cutoff,
      rateVersion: r.rate_version,
      policyVersion: r.policy_version,
      codeVersion: r.code_version,
      adjustmentsThrough: r.adjustments_through,
    },
    startedBy: r.started_by,
    reason: r.reason,
    createdAt: r.created_at as string,
    decidedAt: r.decided_at,
    decidedBy: r.decided_by,
    supersedesRunId: r.supersedes_run_id,
    supersededBy: r.superseded_by,
    verifiesRunId: r.verifies_run_id,
    statementSha256: r.statement_sha256,
    reproduced: r.reproduced,
    exceptions: r.exceptions_count,
    escalated: r.escalated,
  };
}

export const royaltyRoutes: FastifyPluginAsyncTypebox<RoyaltiesApiDeps> = async (app, deps) => {
  const { temporal, pool, minio, config } = deps;
  const bucket = bucketName('royalties', config.minio.bucketPrefix);
  const runUrl = (runId: string) => `/v1/royalties/runs/${runId}`;

  function input(
    month: string,
    rerun: number,
    request: FastifyRequest,
    extra: Partial<SettlementInput> = {},
  ) {
    const workflowId = settlementWorkflowId(month, rerun);
    const settlement: SettlementInput = {
      month,
      rerun,
      runId: runIdFor(workflowId),
      startedBy: request.principal.sub,
      shards: config.royalties.shards,
      latenessHours: config.royalties.latenessHours,
      reminderDays: config.royalties.reminderDays,
      ...extra,
    };
    return { workflowId, settlement };
  }

  async function start(workflowId: string, settlement: SettlementInput) {
    const started = await startOnce<typeof royaltySettlement>(temporal, SETTLEMENT_WORKFLOW, {
      workflowId,
      taskQueue: TASK_QUEUE,
      args: [settlement],
      typedSearchAttributes: [{ key: SEARCH.month, value: settlement.month }],
      memo: {
        runId: settlement.runId,
        idempotencyKey: settlement.idempotencyKey,
        requestHash: settlement.requestHash,
      },
    });
    let runId = settlement.runId as string;
    if (started.existing) {
      // The run that owns the key (a person's earlier start, or the schedule's, which picks its own ID).
      const memo = (await temporal.workflow.getHandle(workflowId).describe()).memo ?? {};
      runId = typeof memo.runId === 'string' ? memo.runId : runId;
    }
    return { ...started, runId };
  }

  async function mustFindRun(runId: string): Promise<RunSummaryRow> {
    const run = await runById(pool, runId);
    if (!run) throw new NotFoundError(`No settlement run ${runId}.`);
    return run;
  }

  app.post(
    '/royalties/settlements',
    {
      config: {
        scopes: ['finance'],
        audit: {
          action: 'royalties.settlement.start',
          subject: () => ({ type: 'settlement_run', id: 'new' }),
        },
      },
      schema: {
        tags: ['royalties'],
        summary: "Settle a month's royalties (its first run); starting it again answers with the same run",
        body: Type.Object({ month: MonthParam }, { additionalProperties: false }),
        response: problems({ 202: StartedRun }),
      },
    },
    async (request, reply) => {
      const { month } = request.body;
      // The schema's pattern is the same rule: a safeguard, never the answer to input the schema admits.
      if (!isMonth(month))
        throw new ValidationError('month is YYYY-MM, 2000-01 to 2099-12', [
          { field: 'body.month', message: `must match ${SETTLEMENT_MONTH_PATTERN}` },
        ]);
      if (Date.now() < monthEnd(month)) {
        throw problemOf(
          RoyaltiesFailure.MonthNotClosed,
          `${month} ends at ${new Date(monthEnd(month)).toISOString()}; it can be settled after that`,
        );
      }
      const { workflowId, settlement } = input(month, 0, request);
      const started = await start(workflowId, settlement);
      request.auditSubject = { type: 'settlement_run', id: started.runId };
      request.auditDetails = { month, workflowId, existing: started.existing };
      return reply
        .code(202)
        .header('location', runUrl(started.runId))
        .send({
          runId: started.runId,
          month,
          rerun: 0,
          workflowId,
          statusUrl: started.statusUrl,
          runUrl: runUrl(started.runId),
          existing: started.existing,
        });
    },
  );

  app.post(
    '/royalties/settlements/:month/reruns',
    {
      config: {
        scopes: ['finance'],
        audit: {
          action: 'royalties.settlement.rerun',
          subject: (r) => ({ type: 'settlement_month', id: (r.params as { month: string }).month }),
        },
      },
      schema: {
        tags: ['royalties'],
        summary:
          'Re-run a month: with the same pins it must reproduce the statement byte for byte (a verification); with a repin it supersedes the open run, or — for an approved month — becomes a correction carried into the next open month',
        params: Type.Object({ month: MonthParam }),
        headers: IdempotencyHeaders,
        body: Type.Object(
          {
            reason: Type.String({ minLength: 3, maxLength: 2000 }),
            repin: Type.Optional(
              Type.Object(
                {
                  ingestionCutoff: Type.Optional(Type.String({ format: 'date-time' })),
                  rateVersion: Type.Optional(Type.Integer({ minimum: 1 })),
                  policyVersion: Type.Optional(Type.Integer({ minimum: 1 })),
                },
                { additionalProperties: false },
              ),
            ),
          },
          { additionalProperties: false },
        ),
        response: problems({ 202: StartedRun }),
      },
    },
    async (request, reply) => {
      const { month } = request.params;
      const repin: Repin | undefined = request.body.repin;
      if (repin?.ingestionCutoff) {
        const problem = cutoffProblem(month, Date.parse(repin.ingestionCutoff));
        if (problem) throw problemOf(RoyaltiesFailure.InvalidCutoff, problem);
        repin.ingestionCutoff = new Date(repin.ingestionCutoff).toISOString();
      }
      const key = idempotencyKey(request.headers['idempotency-key']);
      const requestHash = createHash('sha256')
        .update(JSON.stringify({ sub: request.principal.sub, month, body: request.body }))
        .digest('hex');
      const runs = await runsOfMonth(pool, month);
      const answer = (r: { runId: string; rerun: number; workflowId: string }, existing: boolean) => {
        request.auditSubject = { type: 'settlement_run', id: r.runId };
        request.auditDetails = { month, rerun: r.rerun, repin: repin ?? null, existing };
        return reply
          .code(202)
          .header('location', runUrl(r.runId))
          .send({ ...r, month, statusUrl: statusUrl(r.workflowId), runUrl: runUrl(r.runId), existing });
      };
      if (key) {
        const seen = runs.find((r) => r.idempotency_key === key);
        if (seen && seen.request_hash !== requestHash) {
          throw new CadenzaError(
            'idempotency-key-reused',
            422,
            'Idempotency-Key reused',
            'This Idempotency-Key came with another request.',
          );
        }
        if (seen)
          return answer(
            { runId: seen.run_id, rerun: seen.rerun, workflowId: seen.workflow_id as string },
            true,
          );
      }
      if (!runs.length)
        throw new NotFoundError(`No settlement of ${month} to re-run: start the month first.`);
      const computing = runs.find((r) => r.status === 'running');
      if (computing) {
        throw problemOf(
          RoyaltiesFailure.RunInProgress,
          `run ${computing.run_id} of ${month} is still computing; re-run when it has finished`,
        );
      }
      // The next free rerun number: past the projection's, and past any run Temporal has that is not frozen yet.
      let rerun = Math.max(0, ...runs.filter((r) => r.origin === 'workflow').map((r) => r.rerun)) + 1;
      for (;;) {
        const id = settlementWorkflowId(month, rerun);
        const described = await temporal.workflow
          .getHandle(id)
          .describe()
          .catch((err: unknown) => {
            if (err instanceof WorkflowNotFoundError) return null;
            throw err;
          });
        if (!described) break;
        const memo = described.memo ?? {};
        if (key && memo.idempotencyKey === key) {
          if (memo.requestHash !== requestHash)
            throw new CadenzaError(
              'idempotency-key-reused',
              422,
              'Idempotency-Key reused',
              'This Idempotency-Key came with another request.',
            );
          return answer({ runId: String(memo.runId), rerun, workflowId: id }, true);
        }
        if (described.status.name === 'RUNNING') {
          throw problemOf(
            RoyaltiesFailure.RunInProgress,
            `${id} is still computing; re-run when it has finished`,
          );
        }
        rerun++;
      }
      const { workflowId, settlement } = input(month, rerun, request, {
        reason: request.body.reason,
        repin,
        idempotencyKey: key,
        requestHash,
      });
      const started = await start(workflowId, settlement);
      if (started.existing) {
        throw problemOf(
          RoyaltiesFailure.RunInProgress,
          `another re-run of ${month} (${workflowId}) started just now`,
        );
      }
      return answer({ runId: started.runId, rerun, workflowId }, false);
    },
  );

  app.get(
    '/royalties/settlements/:month',
    {
      config: { scopes: ['finance', 'operator'] },
      schema: {
        tags: ['royalties'],
        summary: "A month's settlement runs, newest first",
        params: Type.Object({ month: MonthParam }),
        response: withProblems({ 200: Type.Object({ month: Text, runs: Type.Array(RunSummary) }) }),
      },
    },
    async (request) => {
      const runs = await runsOfMonth(pool, request.params.month);
      return { month: request.params.month, runs: runs.map(summary) };
    },
  );

  app.get(
    '/royalties/runs/:runId',
    {
      config: { scopes: ['finance', 'operator'] },
      schema: {
        tags: ['royalties'],
        summary:
          'A run: pins, status, totals per currency, exceptions, statement SHA-256 (and live progress while it computes)',
        params: Type.Object({ runId: Uuid }),
        response: withProblems({ 200: RunView }),
      },
    },
    async (request) => {
      const run = await mustFindRun(request.params.runId);
      const [detail, totals, exceptions, rules] = await Promise.all([
        runDetail(pool, run.run_id),
        currencyTotals(pool, run.run_id),
        exceptionsOf(pool, run.run_id, 1000),
        run.policy_version === null ? Promise.resolve(null) : policy(pool, run.policy_version),
      ]);
      let progress: SettlementProgress | null = null;
      if (run.status === 'running' && run.workflow_id) {
        progress = await temporal.workflow
          .getHandle(run.workflow_id)
          .query(settlementProgress)
          .catch(() => null);
      }
      return {
        ...summary(run),
        policy: rules ? { ...rules } : null,
        totals: [...totals],
        exceptionsList: exceptions.map((e) => ({
          kind: e.kind,
          subject: e.subject,
          artistId: e.artist_id,
          trackId: e.track_id,
          country: e.country,
          currency: e.currency,
          plays: e.plays,
          holds: e.holds,
          detail: e.detail,
        })),
        snapshotRunId: run.snapshot_run_id,
        snapshotSha256: detail.snapshot_sha256,
        snapshot: detail.snapshot_stats,
        reaggregation: detail.reaggregation,
        diff: detail.diff,
        crossCheck: detail.cross_check,
        statementBytes: run.statement_bytes,
        progress,
      };
    },
  );

  app.get(
    '/royalties/runs/:runId/statement',
    {
      config: {
        scopes: ['finance', 'operator'],
        audit: {
          action: 'royalties.statement.link',
          subject: (r) => ({ type: 'settlement_run', id: (r.params as { runId: string }).runId }),
        },
      },
      schema: {
        tags: ['royalties'],
        summary:
          "A short-lived presigned URL to the run's statement (a tar: summary.json and one CSV per artist)",
        params: Type.Object({ runId: Uuid }),
        response: problems({
          200: Type.Object({
            runId: Uuid,
            url: Text,
            expiresAt: Text,
            sha256: Text,
            bytes: Type.Integer(),
            contentType: Text,
          }),
        }),
      },
    },
    async (request) => {
      const run = await mustFindRun(request.params.runId);
      if (!run.statement_key || !run.statement_sha256) {
        throw new ConflictError(
          `Run ${run.run_id} has no statement (yet): it is ${run.status}.`,
          'statement-not-written',
        );
      }
      if (!minio) throw new UnavailableError('Statements cannot be linked: no object store is configured.');
      const seconds = config.royalties.statementUrlSeconds;
      const url = await minio.presignedGetObject(bucket, run.statement_key, seconds);
      request.auditDetails = { sha256: run.statement_sha256, expiresInSeconds: seconds };
      return {
        runId: run.run_id,
        url,
        expiresAt: new Date(Date.now() + seconds * 1000).toISOString(),
        sha256: run.statement_sha256,
        bytes: run.statement_bytes ?? 0,
        contentType: 'application/x-tar',
      };
    },
  );

  app.get(
    '/royalties/runs/:runId/diff',
    {
      config: { scopes: ['finance', 'operator'] },
      schema: {
        tags: ['royalties'],
        summary:
          'What changed from another run of the same month to this one: per artist and per artist and track',
        params: Type.Object({ runId: Uuid }),
        querystring: Type.Object({
          against: Uuid,
          limit: Type.Integer({ minimum: 1, maximum: 5000, default: 500 }),
        }),
        response: withProblems({
          200: Type.Object({
            runId: Uuid,
            against: Uuid,
            artists: Type.Array(
              Type.Object({
                artistId: Text,
                currency: Text,
                playsBefore: Type.Integer(),
                playsAfter: Type.Integer(),
                amountBefore: Money,
                amountAfter: Money,
                delta: Money,
              }),
            ),
            tracks: Type.Array(
              Type.Object({
                artistId: Text,
                trackId: Text,
                currency: Text,
                playsBefore: Type.Integer(),
                playsAfter: Type.Integer(),
                amountBefore: Money,
                amountAfter: Money,
                delta: Money,
              }),
            ),
            truncated: Type.Boolean(),
          }),
        }),
      },
    },
    async (request) => {
      const { runId } = request.params;
      const { against, limit } = request.query;
      const [run, other] = await Promise.all([mustFindRun(runId), mustFindRun(against)]);
      if (run.month !== other.month) {
        throw new ValidationError(`run ${against} settles ${other.month}, not ${run.month}`, [
          { field: 'querystring.against', message: 'a run of the same month' },
        ]);
      }
      const d = await runDiff(pool, runId, against, limit);
      const money = (r: {
        artist_id: string;
        currency: string;
        plays_before: number;
        plays_after: number;
        amount_before: string;
        amount_after: string;
        delta: string;
      }) => ({
        artistId: r.artist_id,
        currency: r.currency,
        playsBefore: r.plays_before,
        playsAfter: r.plays_after,
        amountBefore: r.amount_before,
        amountAfter: r.amount_after,
        delta: r.delta,
      });
      return {
        runId,
        against,
        artists: d.artists.map(money),
        tracks: d.tracks.map((t) => ({ ...money(t), trackId: t.track_id })),
        truncated: d.truncated,
      };
    },
  );

  /** An approval or rejection, sent to the run's workflow; a refusal is audited too, then answered. */
  async function decide(
    request: FastifyRequest,
    runId: string,
    decision: 'approve' | 'reject',
    reason?: string,
  ) {
    const run = await mustFindRun(runId);
    const refused = async (type: RoyaltiesFailure, detail: string) => {
      await recordAudit(pool, {
        actor: request.principal.sub,
        action: `royalties.settlement.${decision}.refused`,
        subjectType: 'settlement_run',
        subjectId: runId,
        requestId: request.id,
        details: { failure: type, status: run.status },
      });
      return problemOf(type, detail);
    };
    if (!run.workflow_id || !['awaiting_approval', 'held'].includes(run.status)) {
      throw await refused(RoyaltiesFailure.NotAwaitingApproval, `run ${runId} is ${run.status}`);
    }
    const handle = temporal.workflow.getHandle(run.workflow_id);
    try {
      return decision === 'approve'
        ? await handle.executeUpdate(approveSettlement, { args: [{ approver: request.principal.sub }] })
        : await handle.executeUpdate(rejectSettlement, {
            args: [{ by: request.principal.sub, reason: reason as string }],
          });
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        throw await refused(
          RoyaltiesFailure.NotAwaitingApproval,
          `run ${runId} is no longer waiting for a decision`,
        );
      }
      const problem = problemFromFailure(err);
      if (problem instanceof CadenzaError && problem.extra.failure) {
        throw await refused(problem.extra.failure as RoyaltiesFailure, problem.message);
      }
      throw problem;
    }
  }

  app.post(
    '/royalties/runs/:runId/approve',
    {
      config: {
        scopes: ['finance'],
        audit: {
          action: 'royalties.settlement.approve',
          subject: (r) => ({ type: 'settlement_run', id: (r.params as { runId: string }).runId }),
        },
      },
      schema: {
        tags: ['royalties'],
        summary: 'Approve a run (a finance user other than the one who started it)',
        params: Type.Object({ runId: Uuid }),
        response: problems({ 200: Decision }),
      },
    },
    async (request) => decide(request, request.params.runId, 'approve'),
  );

  app.post(
    '/royalties/runs/:runId/reject',
    {
      config: {
        scopes: ['finance'],
        audit: {
          action: 'royalties.settlement.reject',
          subject: (r) => ({ type: 'settlement_run', id: (r.params as { runId: string }).runId }),
        },
      },
      schema: {
        tags: ['royalties'],
        summary: 'Reject a run awaiting approval or held, with the reason',
        params: Type.Object({ runId: Uuid }),
        body: Type.Object(
          { reason: Type.String({ minLength: 3, maxLength: 2000 }) },
          { additionalProperties: false },
        ),
        response: problems({ 200: Decision }),
      },
    },
    async (request) => {
      request.auditDetails = { reason: request.body.reason };
      return decide(request, request.params.runId, 'reject', request.body.reason);
    },
  );
};
