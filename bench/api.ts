import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import autocannon, { type Result } from 'autocannon';
import { Client, Connection } from '@temporalio/client';
import { mintDevToken } from '../api/auth/dev-issuer';
import { config } from '../lib/config';
import { PING_WORKFLOW, TASK_QUEUE, pingWorkflowId } from '../workflows/ops/contract';
import { percentile } from '../scripts/load/fleet';
import { summary } from './report';

/**
 * npm run bench:api -- [--rates 50,100,200] [--duration 20]
 * Against the running API and worker (npm run up): the latency of starting a workflow through the API
 * (POST /v1/ping, a new run per request) beside the floor measured in the same run at the same rates —
 * a bare Temporal client in this process starting the same workflow — and the API's added latency.
 * Target (issue 14): the API adds ≤ 5 ms at p50 and ≤ 15 ms at p99 over the floor at 100 starts/s.
 * Then /readyz at 200/s.
 */
interface Latencies {
  achieved: number;
  p50: number;
  p99: number;
  failed: number;
}

/**
 * Runs `start` `rate` times a second for `seconds`, open loop — a slow answer never delays the next
 * start — so the floor and the API are offered exactly the same load, measured the same way.
 */
async function openLoop(rate: number, seconds: number, start: () => Promise<boolean>): Promise<Latencies> {
  const took: number[] = [];
  let failed = 0;
  const inFlight: Promise<void>[] = [];
  const t0 = performance.now();
  const total = rate * seconds;
  for (let i = 0; i < total; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const started = performance.now();
    inFlight.push(
      start().then(
        (ok) => void (ok ? took.push(performance.now() - started) : failed++),
        () => void failed++,
      ),
    );
  }
  await Promise.all(inFlight);
  const elapsed = (performance.now() - t0) / 1000;
  return { achieved: took.length / elapsed, p50: percentile(took, 50), p99: percentile(took, 99), failed };
}

/** One POST over a keep-alive connection; true on 202. */
function post(agent: http.Agent, url: URL, token: string, body: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 202));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rates: { type: 'string', default: '50,100,200' },
      duration: { type: 'string', default: '20' },
    },
  });
  const cfg = config();
  const base = `http://${cfg.api.host}:${cfg.api.port}`;
  const health = await fetch(`${base}/healthz`).catch(() => undefined);
  if (!health?.ok) throw new Error(`no API at ${base}: start it with npm run up`);
  const token = await mintDevToken(cfg.auth, { sub: 'bench', scopes: ['service'], ttlSeconds: 3600 });
  const connection = await Connection.connect({ address: cfg.temporal.address });
  const client = new Client({ connection, namespace: cfg.temporal.namespace });
  const rates = values.rates.split(',').map(Number);
  const duration = Number(values.duration);
  const drain = () => new Promise((r) => setTimeout(r, 15_000));

  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const pingUrl = new URL('/v1/ping', base);
  const body = JSON.stringify({ token: 'bench' });
  const bareStart = () =>
    client.workflow
      .start(PING_WORKFLOW, {
        taskQueue: TASK_QUEUE,
        workflowId: pingWorkflowId(`bench-floor-${randomUUID()}`),
        args: [{ token: 'bench' }],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      })
      .then(() => true);

  const out: Record<string, number | string> = { duration_s: duration };
  for (const rate of rates) {
    const floor = await openLoop(rate, duration, bareStart);
    await drain(); // the worker runs what the floor started before the API's turn
    const api = await openLoop(rate, duration, () => post(agent, pingUrl, token, body));
    const added = { p50: api.p50 - floor.p50, p99: api.p99 - floor.p99 };
    process.stdout.write(
      `${rate} starts/s — floor (bare client): ${floor.achieved.toFixed(0)}/s p50 ${floor.p50.toFixed(1)} ms, ` +
        `p99 ${floor.p99.toFixed(1)} ms; API: ${api.achieved.toFixed(0)}/s p50 ${api.p50.toFixed(1)} ms, ` +
        `p99 ${api.p99.toFixed(1)} ms (failed ${api.failed}); added p50 ${added.p50.toFixed(1)} ms, ` +
        `p99 ${added.p99.toFixed(1)} ms\n`,
    );
    Object.assign(out, {
      [`start_${rate}_floor_p50_ms`]: floor.p50,
      [`start_${rate}_floor_p99_ms`]: floor.p99,
      [`start_${rate}_floor_achieved_per_s`]: floor.achieved,
      [`start_${rate}_api_p50_ms`]: api.p50,
      [`start_${rate}_api_p99_ms`]: api.p99,
      [`start_${rate}_api_achieved_per_s`]: api.achieved,
      [`start_${rate}_api_failed`]: api.failed,
      [`start_${rate}_added_p50_ms`]: added.p50,
      [`start_${rate}_added_p99_ms`]: added.p99,
    });
    if (rate === 100) {
      const kept = api.failed === 0 && floor.failed === 0 && api.achieved >= 0.95 * rate;
      out.target_added_p50_5ms_p99_15ms_at_100 = kept && added.p50 <= 5 && added.p99 <= 15 ? 'met' : 'missed';
    }
    await drain();
  }
  const readyz = await new Promise<Result>((resolve, reject) => {
    autocannon({ url: `${base}/readyz`, connections: 20, overallRate: 200, duration }, (err, result) =>
      err ? reject(err) : resolve(result),
    );
  });
  out.readyz_200_p50_ms = readyz.latency.p50;
  out.readyz_200_p99_ms = readyz.latency.p99;
  agent.destroy();
  await connection.close();
  summary('api', out);
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
