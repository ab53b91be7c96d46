import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { sql } from 'slonik';
import { z } from 'zod';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { createOpenSearch, indexAlias } from '../../lib/clients/opensearch';
import { gdprErasureWorkflowId } from '../../workflows/compliance/contract';
import { bearer, tokenFor } from '../helpers/api';
import { catalog, gdprWorld, person, playTicks, until, type Person, type World } from '../helpers/gdpr-world';
import { outageProxy, type OutageProxy } from '../helpers/outage-proxy';

/**
 * An erasure survives its worker's kill -9 and a store going down in the middle: the step in flight is
 * retried (never skipped, never done twice), and the request completes, verified, once things are back.
 */
jest.setTimeout(240_000);
const root = path.join(__dirname, '..', '..');
const N = z.object({ n: z.number() });

describe('GDPR erasure under faults', () => {
  let w: World;
  let tracks: string[];
  let compliance: string;
  let heartbeat: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    w = await gdprWorld({ complianceWorker: false });
    tracks = await catalog(w.pool);
    compliance = await tokenFor(w.cfg, 'dpo-faults', ['compliance']);
  }, 240_000);
  afterAll(async () => {
    clearInterval(heartbeat);
    await w?.close();
  });

  /** A sink that is running but has not loaded the newest suppressions: the erasure waits for it. */
  async function slowSink(version: number) {
    const report = () =>
      w.pool.query(sql.unsafe`
        INSERT INTO list_holders (holder_id, list, version) VALUES ('sink:slow-test-sink', 'play_suppressions', ${version})
        ON CONFLICT (holder_id, list) DO UPDATE SET version = EXCLUDED.version, reported_at = now()`);
    clearInterval(heartbeat);
    await report();
    heartbeat = setInterval(() => void report().catch(() => undefined), 1000);
  }

  async function someone(label: string): Promise<Person> {
    const p = await person(w, tracks, label);
    const service = await tokenFor(w.cfg, 'svc-faults', ['service']);
    const ticks = playTicks(p.userId, tracks[0] as string, 30);
    expect(
      (
        await w.app.inject({
          method: 'POST',
          url: '/v1/play-ticks',
          headers: bearer(service),
          payload: { ticks },
        })
      ).statusCode,
    ).toBe(202);
    await until('their ticks in ClickHouse', async () => {
      const [row] = await (
        await w.clickhouse.query({
          query: `SELECT count() AS n FROM play_ticks WHERE user_id = toUUID('${p.userId}')`,
          format: 'JSONEachRow',
        })
      ).json<{ n: string }>();
      return Number(row?.n) === 30 ? true : undefined;
    });
    return p;
  }

  async function erase(p: Person): Promise<{ requestId: string; handle: WorkflowHandle }> {
    const res = await w.app.inject({
      method: 'POST',
      url: '/v1/gdpr/erasure-requests',
      headers: bearer(compliance),
      payload: { userId: p.userId, reason: 'objection' },
    });
    expect(res.statusCode).toBe(202);
    const { requestId } = res.json();
    return { requestId, handle: w.client.workflow.getHandle(gdprErasureWorkflowId(requestId)) };
  }

  const status = async (requestId: string) =>
    (
      await w.app.inject({
        method: 'GET',
        url: `/v1/gdpr/requests/${requestId}`,
        headers: bearer(compliance),
      })
    ).json();

  async function pending(handle: WorkflowHandle, type: string) {
    const d = await handle.describe();
    return d.raw.pendingActivities?.find((a) => a.activityType?.name === type);
  }

  async function residueFree(p: Person): Promise<void> {
    for (const table of ['play_ticks', 'plays', 'dim_users']) {
      const [row] = await (
        await w.clickhouse.query({
          query: `SELECT count() AS n FROM ${table} WHERE user_id = toUUID('${p.userId}')`,
          format: 'JSONEachRow',
        })
      ).json<{ n: string }>();
      expect({ table, n: Number(row?.n) }).toEqual({ table, n: 0 });
    }
    const { body } = await w.opensearch.count({
      index: indexAlias('playlists', w.cfg.opensearch.indexPrefix),
      body: { query: { term: { owner_id: p.userId } } },
    });
    expect(body.count).toBe(0);
    expect(
      await w.pool.oneFirst(
        sql.type(N)`SELECT count(*)::int AS n FROM session_logs WHERE user_id = ${p.userId}`,
      ),
    ).toBe(0);
  }

  it('completes after the worker process is killed -9 in the middle, each step audited once', async () => {
    const p = await someone('killed');
    await slowSink(0);
    // node itself runs the worker (tsx only as its loader), so the kill reaches the worker, not a wrapper.
    const proc: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(root, 'workers', 'main.ts')],
      {
        cwd: root,
        env: {
          ...process.env,
          CADENZA_TEMPORAL_NAMESPACE: w.cfg.temporal.namespace,
          CADENZA_WORKER_TASK_QUEUES: 'compliance',
          CADENZA_WORKER_HEALTH_PORT: '3917',
          CADENZA_WORKER_METRICS_PORT: '9917',
          CADENZA_PG_DATABASE: w.cfg.postgres.database,
          CADENZA_CLICKHOUSE_DATABASE: w.cfg.clickhouse.database,
          CADENZA_OPENSEARCH_INDEX_PREFIX: w.cfg.opensearch.indexPrefix,
          CADENZA_MINIO_BUCKET_PREFIX: w.cfg.minio.bucketPrefix,
          CADENZA_KAFKA_TICKS_TOPIC: w.pipe.topics.ticks,
          CADENZA_KAFKA_DLQ_TOPIC: w.pipe.topics.dlq,
          CADENZA_PAYMENTS_SANDBOX_URL: w.sandboxUrl,
          CADENZA_LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    try {
      await until('the worker process', async () =>
        (await fetch('http://127.0.0.1:3917/healthz')).ok ? true : undefined,
      );
      const { requestId, handle } = await erase(p);
      // Mid-erasure: new data is stopped, and the step waiting for the slow sink is running in that process.
      await until('the wait for the sinks', async () =>
        (await pending(handle, 'awaitListHeld'))?.lastStartedTime ? true : undefined,
      );
      proc.kill('SIGKILL');
      await exited;
      await w.startComplianceWorker();
      await slowSink(Number.MAX_SAFE_INTEGER); // the slow sink catches up
      const done = await until('the erasure', async () => {
        const r = await status(requestId);
        return r.status === 'completed' ? r : undefined;
      });
      expect(done).toMatchObject({ outcome: 'erased' });
      await residueFree(p);
      // The step that was killed ran again (its heartbeat stopped); nothing was audited twice.
      const audited = await w.pool.any(sql.type(z.object({ action: z.string(), n: z.number() }))`
        SELECT action, count(*)::int AS n FROM audit_log WHERE subject_id = ${requestId} GROUP BY action ORDER BY action`);
      expect(audited).toEqual([
        { action: 'gdpr.erasure.certificate', n: 1 },
        { action: 'gdpr.erasure.certified', n: 1 },
        { action: 'gdpr.erasure.received', n: 1 },
        { action: 'gdpr.erasure.request', n: 1 },
      ]);
      const history = await handle.fetchHistory();
      const starts = history.events?.filter((e) => e.activityTaskStartedEventAttributes) ?? [];
      expect(starts.map((e) => Number(e.activityTaskStartedEventAttributes?.attempt))).toContain(2);
    } finally {
      proc.kill('SIGKILL');
      clearInterval(heartbeat);
      await w.pool.query(sql.unsafe`DELETE FROM list_holders WHERE holder_id = 'sink:slow-test-sink'`);
    }
  });

  it('retries while ClickHouse and OpenSearch are down, then completes verified', async () => {
    const p = await someone('outage');
    let chProxy: OutageProxy | undefined;
    let osProxy: OutageProxy | undefined;
    try {
      chProxy = await outageProxy({ host: w.cfg.clickhouse.host, port: w.cfg.clickhouse.httpPort });
      osProxy = await outageProxy({ host: w.cfg.opensearch.host, port: w.cfg.opensearch.port });
      await w.stopComplianceWorker();
      await w.startComplianceWorker({
        clickhouse: createClickHouse({ ...w.cfg.clickhouse, url: `http://${chProxy.address}` }),
        opensearch: createOpenSearch({ ...w.cfg.opensearch, url: `http://${osProxy.address}` }),
      });
      chProxy.cut();
      osProxy.cut();
      const { requestId, handle } = await erase(p);
      let seen = '';
      await until('both steps retrying', async () => {
        const d = await handle.describe();
        seen = JSON.stringify(
          d.raw.pendingActivities?.map((a) => [a.activityType?.name, a.attempt, a.lastFailure?.message]),
        );
        const ch = await pending(handle, 'eraseClickHouse');
        const os = await pending(handle, 'eraseSearch');
        return Number(ch?.attempt) >= 3 && Number(os?.attempt) >= 3 ? true : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}; pending: ${seen}`);
      });
      const during = await status(requestId);
      expect(during.status).toBe('in_progress');
      // The stores that are up went on.
      expect(during.stores.postgres?.status).toMatch(/^(done|verified)$/);
      expect(during.stores.clickhouse?.status ?? 'pending').not.toBe('verified');
      chProxy.restore();
      osProxy.restore();
      const done = await until(
        'the erasure',
        async () => {
          const r = await status(requestId);
          return r.status === 'completed' ? r : undefined;
        },
        120_000,
      );
      for (const store of ['clickhouse', 'opensearch']) expect(done.stores[store].status).toBe('verified');
      expect(done.stores.clickhouse.found).toMatchObject({ play_ticks: 30 });
      await residueFree(p);
    } finally {
      chProxy?.restore();
      osProxy?.restore();
      await w.stopComplianceWorker();
      await Promise.allSettled([chProxy?.close(), osProxy?.close()]);
    }
  });
});
