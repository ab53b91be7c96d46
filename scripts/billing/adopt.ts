import { Client, Connection } from '@temporalio/client';
import pLimit from 'p-limit';
import { adoptRow, liveRows } from '../../activities/billing/adoption';
import { createPostgresPool } from '../../lib/clients/postgres';
import type { Config } from '../../lib/config';
import { loadPlanCatalog } from '../../lib/plans';

export interface AdoptionReport {
  rows: number;
  started: number;
  /** Rows whose workflow was running already (started by an earlier, interrupted batch). */
  running: number;
}

/**
 * Starts a workflow for every live subscription row that no workflow has written yet (rows from before
 * workflows, like the seed's), a page at a time. Resumable: a row adopted earlier has been written by its
 * workflow (or its run is there), so running it again skips it; nothing starts twice.
 */
export async function adoptLiveSubscriptions(
  cfg: Config,
  opts: { batch?: number; onPage?: (report: AdoptionReport) => void } = {},
): Promise<AdoptionReport> {
  const pool = await createPostgresPool(cfg.postgres, 2);
  const connection = await Connection.connect({ address: cfg.temporal.address });
  const temporal = new Client({ connection, namespace: cfg.temporal.namespace });
  const deps = {
    temporal,
    plans: loadPlanCatalog(cfg.billing.plansFile),
    template: cfg.billing.adoptTemplate,
  };
  const report: AdoptionReport = { rows: 0, started: 0, running: 0 };
  const limit = pLimit(16);
  try {
    for (let after = '00000000-0000-0000-0000-000000000000'; ;) {
      const rows = await liveRows(pool, { after, limit: opts.batch ?? 200, neverWritten: true });
      if (rows.length === 0) break;
      const answers = await Promise.all(
        rows.map((row) => limit(() => adoptRow(deps, row, 'adopted: a subscription from before workflows'))),
      );
      report.rows += rows.length;
      report.started += answers.filter((a) => a === 'started').length;
      report.running += answers.filter((a) => a === 'running').length;
      after = rows.at(-1)?.subscription_id as string;
      opts.onPage?.(report);
    }
    return report;
  } finally {
    await Promise.allSettled([pool.end(), connection.close()]);
  }
}
