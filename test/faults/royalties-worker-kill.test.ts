import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { sql } from 'slonik';
import { z } from 'zod';
import { royaltySettlement } from '../../workflows';
import {
  TASK_QUEUE,
  settlementProgress,
  settlementWorkflowId,
  shardWorkflowId,
  type SettlementInput,
} from '../../workflows/royalties/contract';
import { testConfig } from '../helpers/env';
import {
  addArtist,
  addPolicy,
  insertTicks,
  publishRates,
  readStatement,
  royaltiesStores,
  royaltiesWorker,
  type Rate,
  type RoyaltiesStores,
  type TestTick,
} from '../helpers/royalties';

/**
 * Determinism under a crash: the worker process computing a month is killed with SIGKILL in the middle
 * (snapshot, payouts or statement); another worker finishes the run, and its statement has the same
 * SHA-256 as two same-pins re-runs computed without interruption.
 */
jest.setTimeout(300_000);

const MONTH = '2026-06';
const root = path.join(__dirname, '..', '..');

describe('a settlement worker killed with -9 mid-run', () => {
  let s: RoyaltiesStores;
  let proc: ChildProcess | undefined;
  let lineCount = 0;

  beforeAll(async () => {
    s = await royaltiesStores(testConfig());
    const countries = ['US', 'DE', 'GB', 'FR', 'SE', 'BR', 'JP', 'IN', 'MX', 'ES'];
    const currency: Record<string, string> = { US: 'USD', DE: 'EUR', GB: 'GBP', FR: 'EUR', SE: 'SEK' };
    const tracks: string[] = [];
    const rates: Rate[] = [];
    for (let a = 0; a < 60; a++) {
      const artist = await addArtist(s.pool, 5);
      tracks.push(...artist.trackIds);
      countries.forEach((country, i) =>
        rates.push({
          artistId: artist.artistId,
          country,
          rate: `0.00${String(1000 + ((a * 37 + i * 11) % 8999)).padStart(4, '0')}`,
          currency: currency[country] ?? 'USD',
        }),
      );
    }
    await publishRates(s.pool, 1, rates);
    await addPolicy(s.pool, 2, { minTrailingStreams: 0 });
    const ticks: TestTick[] = [];
    const pairs = new Set<string>();
    const start = Date.parse('2026-06-01T00:00:00Z');
    for (let p = 0; p < 30_000; p++) {
      const playId = randomUUID();
      const userId = randomUUID();
      const track = tracks[(p * 7919 + Math.floor(p / 300)) % tracks.length] as string;
      const country = countries[(p * 31) % countries.length] as string;
      const at = start + ((p * 86_413) % (29 * 86_400_000));
      pairs.add(`${track}|${country}`);
      for (let k = 1; k <= 6 + (p % 5); k++)
        ticks.push({
          eventId: randomUUID(),
          playId,
          userId,
          trackId: track,
          country,
          positionMs: k * 5000,
          eventTime: new Date(at + k * 5000).toISOString(),
          ingestedAt: new Date(at + k * 5000 + 1500).toISOString(),
        });
    }
    await insertTicks(s.clickhouse, ticks);
    lineCount = pairs.size;
  });
  afterAll(async () => {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    await s?.drop();
  });

  it('the run finishes on another worker with the statement two uninterrupted re-runs write, byte for byte', async () => {
    const cfg = s.config;
    // node itself runs the worker (tsx as a loader), so SIGKILL reaches the worker, not a wrapper around it.
    proc = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'workers', 'main.ts')], {
      cwd: root,
      env: {
        ...process.env,
        CADENZA_TEMPORAL_NAMESPACE: cfg.temporal.namespace,
        CADENZA_PG_DATABASE: cfg.postgres.database,
        CADENZA_CLICKHOUSE_DATABASE: cfg.clickhouse.database,
        CADENZA_MINIO_BUCKET_PREFIX: cfg.minio.bucketPrefix,
        CADENZA_WORKER_TASK_QUEUES: TASK_QUEUE,
        CADENZA_WORKER_HEALTH_PORT: '3921',
        CADENZA_WORKER_METRICS_PORT: '9921',
        CADENZA_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      proc?.once('exit', (_code, signal) => resolve(signal)),
    );
    for (let i = 0; i < 240; i++) {
      const up = await fetch('http://127.0.0.1:3921/healthz').then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    // The in-process worker is only a client until the child is dead: it starts polling after the kill.
    const input = (rerun: number): SettlementInput => ({
      month: MONTH,
      rerun,
      startedBy: 'finance-alice',
      shards: 16,
      latenessHours: 2,
      reminderDays: 3,
    });
    const probe = await royaltiesWorker(cfg, s.deps, { poll: false });
    await probe.clearMonth(MONTH);
    const handle = await probe.client.workflow.start(royaltySettlement, {
      taskQueue: TASK_QUEUE,
      workflowId: settlementWorkflowId(MONTH),
      args: [input(0)],
    });
    let killedIn = '';
    for (let i = 0; i < 2000 && !killedIn; i++) {
      const p = await handle.query(settlementProgress).catch(() => null);
      if (p && ['snapshot', 'payouts', 'statement'].includes(p.phase)) {
        proc.kill('SIGKILL');
        killedIn = `${p.phase} (${p.shardsDone}/${p.shardsTotal} shards)`;
      } else await new Promise((r) => setTimeout(r, 25));
    }
    expect(killedIn).not.toBe('');
    expect(await exited).toBe('SIGKILL');

    const worker = await royaltiesWorker(cfg, s.deps);
    try {
      let status = '';
      for (let i = 0; i < 600 && status !== 'awaiting_approval'; i++) {
        status = (await handle.query(settlementProgress)).status;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect({ killedIn, status }).toEqual({ killedIn, status: 'awaiting_approval' });
      const interrupted = (await handle.query(settlementProgress)).statementSha256 as string;
      // The step the dead worker held was taken over: run again by the new worker (attempt 2 or later),
      // or its workflow task timed out on the dead worker's queue and moved.
      const histories = [await handle.fetchHistory()];
      for (let shard = 0; shard < 16; shard++)
        histories.push(
          await worker.client.workflow
            .getHandle(shardWorkflowId(settlementWorkflowId(MONTH), shard))
            .fetchHistory(),
        );
      const retried = histories
        .flatMap((h) => h.events ?? [])
        .filter(
          (e) =>
            (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1 ||
            e.workflowTaskTimedOutEventAttributes ||
            e.activityTaskTimedOutEventAttributes,
        );
      expect({ killedIn, retried: retried.length > 0 }).toEqual({ killedIn, retried: true });

      const shas: string[] = [];
      for (const rerun of [1, 2]) {
        const result = await worker.client.workflow.execute(royaltySettlement, {
          taskQueue: TASK_QUEUE,
          workflowId: settlementWorkflowId(MONTH, rerun),
          args: [input(rerun)],
        });
        expect(result).toMatchObject({ status: 'verified', reproduced: true });
        shas.push(result.statementSha256 as string);
      }
      expect(shas).toEqual([interrupted, interrupted]);
      // And the bytes in the bucket are those bytes.
      const key = await s.pool.oneFirst(sql.type(z.object({ statement_key: z.string() }))`
        SELECT statement_key FROM settlement_runs WHERE workflow_id = ${settlementWorkflowId(MONTH)}`);
      expect((await readStatement(s.deps.minio, s.deps.bucket, key)).sha256).toBe(interrupted);
      const lines = await s.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
        SELECT count(*)::int AS n FROM payout_lines WHERE run_id = (SELECT run_id FROM settlement_runs WHERE workflow_id = ${settlementWorkflowId(MONTH)})`);
      expect(lines).toBe(lineCount);
      await handle.cancel();
    } finally {
      await worker.stop();
      await probe.stop();
    }
  });
});
