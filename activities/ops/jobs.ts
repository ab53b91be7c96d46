import { sql, type DatabasePool } from 'slonik';
import type { OpsJob } from '../../workflows/ops/contract';

/**
 * The record of each scheduled job's runs (ops_job_runs), by business key: operators read it, and the job
 * metrics (last success, last failure per job) come from it whatever Temporal still retains.
 */
export function createJobActivities(pool: DatabasePool) {
  return {
    /** A retried or replayed start keeps the first start time; a re-run of a failed key starts afresh. */
    async recordJobStarted(i: { runKey: string; job: OpsJob }): Promise<void> {
      await pool.query(sql.unsafe`
        INSERT INTO ops_job_runs (run_key, job, status) VALUES (${i.runKey}, ${i.job}, 'running')
        ON CONFLICT (run_key) DO UPDATE SET status = 'running', started_at = now(), finished_at = NULL,
          error = NULL, summary = '{}'
        WHERE ops_job_runs.status = 'failed'`);
    },

    async recordJobFinished(i: {
      runKey: string;
      status: 'succeeded' | 'failed';
      summary?: Record<string, unknown>;
      error?: string;
    }): Promise<void> {
      await pool.query(sql.unsafe`
        UPDATE ops_job_runs SET status = ${i.status}, finished_at = coalesce(finished_at, now()),
          summary = ${sql.jsonb((i.summary ?? {}) as Parameters<typeof sql.jsonb>[0])},
          error = ${i.error ? i.error.slice(0, 2000) : null}
        WHERE run_key = ${i.runKey}`);
    },
  };
}
