import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { OpsActivities } from '../../activities/ops';
import type { DrillFailure } from '../../workflows/ops/contract';

/**
 * Mocked ops activities for time-skipping workflow tests and recorded histories: each records its call and
 * answers like the real one would; `knobs` make a step fail, hang until cancelled, or a drill find damage.
 */
export interface OpsKnobs {
  /** The named activity fails for good (a non-retryable error, as after its retries). */
  fail?: keyof OpsActivities;
  /** The named activity heartbeats until it is cancelled. */
  hang?: keyof OpsActivities;
  /** The named activity takes two seconds (time to cancel the run while it works). */
  slow?: keyof OpsActivities;
  /** What the PostgreSQL restore finds. */
  drillFailures?: DrillFailure[];
  /** beginRestoreDrill finds nothing to restore. */
  noBackup?: boolean;
}

export function fakeOps(knobs: OpsKnobs = {}) {
  const calls: { name: string; input: unknown }[] = [];
  const step = async <T>(name: keyof OpsActivities, input: unknown, answer: T): Promise<T> => {
    calls.push({ name, input });
    if (knobs.fail === name)
      throw ApplicationFailure.nonRetryable(`${name} could not reach its store`, 'StoreDown');
    if (knobs.slow === name) await new Promise((r) => setTimeout(r, 2000));
    if (knobs.hang === name) {
      const ctx = Context.current();
      for (;;) {
        ctx.heartbeat();
        await ctx.sleep(500); // rejects once the workflow cancels the activity
      }
    }
    return answer;
  };
  const table = { rows: 3, checksum: '42' };
  const object = (key: string) => ({ key, bytes: 10, sha256: 'a'.repeat(64) });

  const activities: OpsActivities = {
    recordJobStarted: (i) => step('recordJobStarted', i, undefined),
    recordJobFinished: (i) => step('recordJobFinished', i, undefined),
    refreshChangedDimensions: (i) =>
      step('refreshChangedDimensions', i, {
        since: null,
        until: '2026-01-01T00:00:00.000000Z',
        tracks: 2,
        campaigns: 1,
        users: 3,
        erasedUsersRemoved: 0,
      }),
    maintainPartitions: () =>
      step(
        'maintainPartitions',
        {},
        {
          tables: [
            { table: 'public.session_logs', partitionsCreated: 1, partitionsDropped: 0, runwayDays: 120 },
          ],
        },
      ),
    beginBackup: (i) => step('beginBackup', i, undefined),
    backupPostgres: (i) =>
      step('backupPostgres', i, {
        database: 'cadenza',
        serverVersion: '15',
        object: object(`${i.backupId}/postgres/cadenza.dump`),
        tables: { 'public.users': table },
      }),
    backupClickHouse: (i) =>
      step('backupClickHouse', i, {
        database: 'cadenza',
        serverVersion: '18.16.1',
        tables: [
          {
            name: 'plays',
            engine: 'AggregatingMergeTree',
            ddl: object(`${i.backupId}/clickhouse/plays.sql`),
            data: object(`${i.backupId}/clickhouse/plays.native`),
            rows: 3,
            checksum: '7',
            consistent: true,
          },
        ],
      }),
    backupOpenSearch: (i) => step('backupOpenSearch', i, { indices: [] }),
    completeBackup: (i) =>
      step('completeBackup', i, {
        backupId: i.backupId,
        manifestKey: `${i.backupId}/manifest.json`,
        bytes: 30,
        objects: 4,
      }),
    markBackupFailed: (i) => step('markBackupFailed', i, undefined),
    expireBackups: (i) => step('expireBackups', i, ['2020-01-01T0300Z']),
    beginRestoreDrill: (i) =>
      step(
        'beginRestoreDrill',
        i,
        knobs.noBackup
          ? {
              backupId: null,
              problem: {
                store: 'manifest' as const,
                object: 'backups',
                reason: 'there is no completed backup to restore',
              },
            }
          : { backupId: i.backupId ?? '2026-01-04T0300Z', problem: null },
      ),
    restorePostgresBackup: (i) =>
      step('restorePostgresBackup', i, { checks: 5, failures: knobs.drillFailures ?? [] }),
    restoreClickHouseBackup: (i) => step('restoreClickHouseBackup', i, { checks: 4, failures: [] }),
    restoreOpenSearchBackup: (i) => step('restoreOpenSearchBackup', i, { checks: 2, failures: [] }),
    abandonRestoreDrill: (i) => step('abandonRestoreDrill', i, undefined),
    finishRestoreDrill: (i) =>
      step('finishRestoreDrill', i, {
        drillId: i.drillId,
        backupId: i.backupId ?? '',
        status: i.failures.length ? ('failed' as const) : ('passed' as const),
        checks: i.checks,
        failures: i.failures,
      }),
    computeTrackNeighbors: (i) => step('computeTrackNeighbors', i, 12),
    recommendForShard: (i) => step('recommendForShard', i, 10 + i.shard),
    dropOldNeighborRuns: (i) => step('dropOldNeighborRuns', i, []),
  };
  return { activities, calls, names: () => calls.map((c) => c.name) };
}
