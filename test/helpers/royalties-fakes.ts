import { createHash } from 'node:crypto';
import type { RoyaltiesActivities } from '../../activities/royalties';
import { defaultCutoff } from '../../domain/royalties/pins';
import type { Decision, FrozenRun, RunKind, RunStatus } from '../../workflows/royalties/contract';

/**
 * Plain-function stand-ins for the settlement's activities, for time-skipping workflow tests and the
 * history recorder. They keep each run's status like the database does (decisions only from
 * awaiting_approval, never by the starter) and record every call.
 */
export interface MonthScript {
  kind?: RunKind;
  /** Exceptions that hold the run. */
  exceptions?: number;
  /** Overrides the cut-off (ISO); default: the month's end + 2 h. */
  cutoff?: string;
  /** Refuse the freeze (another run computing, say). */
  refuse?: { refused: 'RunInProgress'; reason: string };
  /** The statement's digest; default: from the month, so every run of a month writes the same one. */
  sha256?: string;
  supersedes?: string[];
  /** How long (real time) writing the statement takes: the run is still computing meanwhile. */
  statementDelayMs?: number;
}

interface FakeRun {
  runId: string;
  workflowId: string;
  month: string;
  kind: RunKind;
  status: RunStatus;
  startedBy: string;
  decision?: Decision;
}

export function fakeRoyalties(scripts: Record<string, MonthScript> = {}) {
  const runs = new Map<string, FakeRun>();
  const calls: { name: string; args: unknown }[] = [];
  const record = (name: string, args: unknown) => calls.push({ name, args });
  const sha = (month: string) => createHash('sha256').update(`statement:${month}`).digest('hex');
  let clock = 0;

  const activities: Partial<RoyaltiesActivities> = {
    async freezeSettlement(input) {
      record('freezeSettlement', input);
      const script = scripts[input.month] ?? {};
      if (script.refuse) return script.refuse;
      const existing = [...runs.values()].find((r) => r.workflowId === input.workflowId);
      const runId =
        existing?.runId ?? input.runId ?? `00000000-0000-4000-8000-${String(++clock).padStart(12, '0')}`;
      const run: FakeRun = existing ?? {
        runId,
        workflowId: input.workflowId,
        month: input.month,
        kind: script.kind ?? 'settlement',
        status: 'running',
        startedBy: input.startedBy,
      };
      runs.set(runId, run);
      const frozen: FrozenRun = {
        runId,
        kind: run.kind,
        pins: {
          month: input.month,
          ingestionCutoff:
            script.cutoff ?? new Date(defaultCutoff(input.month, input.latenessHours)).toISOString(),
          rateVersion: 1,
          policyVersion: 1,
          codeVersion: 1,
          adjustmentsThrough: '2026-11-01T02:00:00.000Z',
        },
        snapshotRunId: runId,
        verifiesRunId: run.kind === 'verification' ? 'verified-run' : null,
        supersedesRunId: null,
        supersededWorkflowIds: script.supersedes ?? [],
        status: run.status,
      };
      return frozen;
    },
    async snapshotPlays(runId) {
      record('snapshotPlays', runId);
      return { lines: 42, sha256: 'f'.repeat(64) };
    },
    async compareWithClickHouse(runId) {
      record('compareWithClickHouse', runId);
      return { matches: true };
    },
    async computeShardPayouts(input) {
      record('computeShardPayouts', input);
      return { shard: input.shard, artists: 1, lines: 2, heldLines: 0 };
    },
    async writeStatement(runId) {
      record('writeStatement', runId);
      const run = runs.get(runId) as FakeRun;
      const delay = scripts[run.month]?.statementDelayMs;
      if (delay) await new Promise((r) => setTimeout(r, delay));
      const sha256 = scripts[run.month]?.sha256 ?? sha(run.month);
      return { key: `settlements/${run.month}/${runId}/statement.tar`, sha256, bytes: 10_240 };
    },
    async concludeSettlement(runId) {
      record('concludeSettlement', runId);
      const run = runs.get(runId) as FakeRun;
      const exceptions = scripts[run.month]?.exceptions ?? 0;
      run.status = run.kind === 'verification' ? 'verified' : exceptions > 0 ? 'held' : 'awaiting_approval';
      return { status: run.status, reproduced: run.kind === 'verification' ? true : null, exceptions };
    },
    async decideSettlement(d) {
      record('decideSettlement', d);
      const run = runs.get(d.runId) as FakeRun;
      if (run.decision && run.decision.decidedBy === d.by) return run.decision;
      if (d.decision === 'approve' && run.status === 'held') return { refused: 'RunHeld', reason: 'held' };
      const open = d.decision === 'approve' ? ['awaiting_approval'] : ['awaiting_approval', 'held'];
      if (!open.includes(run.status))
        return { refused: 'NotAwaitingApproval', reason: `run is ${run.status}` };
      if (d.decision === 'approve' && d.by === run.startedBy)
        return { refused: 'SameApprover', reason: 'separation of duties' };
      run.status =
        d.decision === 'reject' ? 'rejected' : run.kind === 'correction' ? 'carried_forward' : 'approved';
      run.decision = {
        runId: d.runId,
        status: run.status,
        decidedBy: d.by,
        decidedAt: '2026-11-03T09:00:00.000Z',
      };
      return run.decision;
    },
    async remindApprovers(r) {
      record('remindApprovers', r);
    },
    async endSettlement(e) {
      record('endSettlement', e);
      const run = [...runs.values()].find((r) => r.workflowId === e.workflowId);
      if (!run) return null;
      if (['running', 'held', 'awaiting_approval'].includes(run.status)) run.status = e.status;
      return run.status;
    },
  };

  return {
    activities,
    calls: (name?: string) => calls.filter((c) => !name || c.name === name),
    run: (runId: string) => runs.get(runId),
    runByWorkflow: (workflowId: string) => [...runs.values()].find((r) => r.workflowId === workflowId),
  };
}
