import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { createPostgresPool } from '../../lib/clients/postgres';
import type { Config } from '../../lib/config';
import { migratePostgres } from '../../sql/migrate/postgres';
import { scratchDatabases } from '../../stack/scratch';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';
import { testConfig, workflowBundle, workflowSinks } from '../helpers/env';
import { TASK_QUEUE, pingWorkflowId } from '../../workflows/ops/contract';

/** API → Temporal dev server → worker → activity → API reports the result. */
describe('ping end to end', () => {
  let cfg: Config;
  let app: FastifyInstance;
  let connection: Connection;
  let worker: Worker;
  let running: Promise<void>;
  let token: string;
  let pool: DatabasePool;
  let db: Awaited<ReturnType<typeof scratchDatabases>>;

  /** The audit entries one API request wrote (by its request ID). */
  const auditOf = (requestId: string) =>
    pool.any(sql.type(z.object({ actor: z.string(), action: z.string(), subject_id: z.string() }))`
      SELECT actor, action, subject_id FROM audit_log WHERE request_id = ${requestId}`);

  beforeAll(async () => {
    // Its own database: the audit log and the Idempotency-Keys it writes are this file's alone.
    db = await scratchDatabases(testConfig(), { clickhouse: false });
    await migratePostgres(db.config.postgres);
    cfg = withTempIssuer(db.config);
    connection = await Connection.connect({ address: cfg.temporal.address });
    pool = await createPostgresPool(cfg.postgres, 2);
    app = await testApp(cfg, {
      temporal: new Client({ connection, namespace: cfg.temporal.namespace }),
      pool,
    });
    worker = await Worker.create({
      connection: await NativeConnection.connect({ address: cfg.temporal.address }),
      namespace: cfg.temporal.namespace,
      taskQueue: TASK_QUEUE,
      workflowBundle: await workflowBundle(),
      sinks: workflowSinks(),
      activities: createActivities(),
    });
    running = worker.run();
    token = await tokenFor(cfg, 'ops-1', ['operator']);
  }, 60_000);

  afterAll(async () => {
    worker?.shutdown();
    await running;
    await app?.close();
    await connection?.close();
    await pool?.end();
    await db?.drop();
  });

  async function waitForStatus(id: string, status: string) {
    for (let i = 0; i < 100; i++) {
      const res = await app.inject({ method: 'GET', url: `/v1/workflows/${id}`, headers: bearer(token) });
      if (res.json().status === status) return res.json();
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${id} never reached ${status}`);
  }

  it('starts ping with 202, runs it on the worker, and reports its result', async () => {
    const key = `e2e-${randomUUID()}`;
    const res = await app.inject({
      method: 'POST',
      url: '/v1/ping',
      headers: { ...bearer(token), 'idempotency-key': key },
      payload: { token: 'hello' },
    });
    expect(res.statusCode).toBe(202);
    const started = res.json();
    // The key names the request, not the run: the run's ID is new, remembered with the key.
    expect(started).toMatchObject({ existing: false, statusUrl: `/v1/workflows/${started.workflowId}` });
    expect(started.workflowId).toMatch(/^ping-[0-9a-f-]{36}$/);
    expect(started.workflowId).not.toBe(pingWorkflowId(key));
    expect(res.headers.location).toBe(started.statusUrl);
    expect(await auditOf(res.headers['x-request-id'] as string)).toEqual([
      { actor: 'ops-1', action: 'ping.start', subject_id: started.workflowId },
    ]);

    const done = await waitForStatus(started.workflowId, 'COMPLETED');
    expect(done).toMatchObject({ type: 'ping', taskQueue: TASK_QUEUE, runId: started.runId });
    expect(done.result).toEqual({ token: 'hello', answeredBy: 'ops/5', activityAttempt: 1 });

    const list = await app.inject({
      method: 'GET',
      url: '/v1/workflows?type=ping&status=Completed&pageSize=200',
      headers: bearer(token),
    });
    expect(list.statusCode).toBe(200);
    expect(list.json().workflows.map((w: { workflowId: string }) => w.workflowId)).toContain(
      started.workflowId,
    );
  }, 60_000);

  it('answers a repeated Idempotency-Key with the existing run instead of starting another', async () => {
    const key = `e2e-${randomUUID()}`;
    const send = () =>
      app.inject({
        method: 'POST',
        url: '/v1/ping',
        headers: { ...bearer(token), 'idempotency-key': key },
        payload: { token: 'once' },
      });
    const first = (await send()).json();
    const second = await send();
    expect(second.statusCode).toBe(202);
    expect(second.json()).toMatchObject({ workflowId: first.workflowId, runId: first.runId, existing: true });
    await waitForStatus(first.workflowId, 'COMPLETED');
    const third = (await send()).json();
    expect(third).toMatchObject({ runId: first.runId, existing: true });
    // The same key from another caller is another request; with another body, it is refused.
    const other = await tokenFor(cfg, 'svc-2', ['service']);
    const theirs = await app.inject({
      method: 'POST',
      url: '/v1/ping',
      headers: { ...bearer(other), 'idempotency-key': key },
      payload: { token: 'once' },
    });
    expect(theirs.statusCode).toBe(202);
    expect(theirs.json().workflowId).not.toBe(first.workflowId);
    const changed = await app.inject({
      method: 'POST',
      url: '/v1/ping',
      headers: { ...bearer(token), 'idempotency-key': key },
      payload: { token: 'twice' },
    });
    expect(changed.statusCode).toBe(422);
    expect(changed.json().type).toBe('urn:cadenza:problem:idempotency-key-reused');
    expect(await auditOf(changed.headers['x-request-id'] as string)).toEqual([]);
  }, 60_000);

  it('cancels a running workflow on request and reports it canceled', async () => {
    const key = `e2e-${randomUUID()}`;
    const started = (
      await app.inject({
        method: 'POST',
        url: '/v1/ping',
        headers: { ...bearer(token), 'idempotency-key': key },
        payload: { token: 'slow', delay: '1 hours' },
      })
    ).json();
    const cancel = await app.inject({
      method: 'POST',
      url: `/v1/workflows/${started.workflowId}/cancel`,
      headers: bearer(token),
    });
    expect(cancel.statusCode).toBe(202);
    await waitForStatus(started.workflowId, 'CANCELLED');
    // The operator's cancel leaves exactly one trace; a refused one (unknown run) leaves none.
    expect(await auditOf(cancel.headers['x-request-id'] as string)).toEqual([
      { actor: 'ops-1', action: 'workflow.cancel', subject_id: started.workflowId },
    ]);
    const unknown = await app.inject({
      method: 'POST',
      url: `/v1/workflows/nope-${randomUUID()}/cancel`,
      headers: bearer(token),
    });
    expect(unknown.statusCode).toBe(404);
    expect(await auditOf(unknown.headers['x-request-id'] as string)).toEqual([]);
  }, 60_000);

  it('answers 404 problem+json for an unknown workflow', async () => {
    const res = await app.inject({
      method: 'GET',
      url: `/v1/workflows/nope-${randomUUID()}`,
      headers: bearer(token),
    });
    expect(res.statusCode).toBe(404);
    expect(res.json().type).toBe('urn:cadenza:problem:not-found');
  });
});
