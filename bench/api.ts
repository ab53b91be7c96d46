import { parseArgs } from 'node:util';
import autocannon, { type Result } from 'autocannon';
import { mintDevToken } from '../lib/auth/dev-issuer';
import { config } from '../lib/config';
import { summary } from './report';

/**
 * npm run bench:api -- [--rate 200] [--duration 30]
 * Against the running API (npm run up): start-workflow latency (POST /v1/ping, a new workflow per
 * request) and /readyz, each at a fixed request rate. Target: p99 ≤ 25 ms at 200 starts/s.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rate: { type: 'string', default: '200' }, duration: { type: 'string', default: '30' } },
  });
  const cfg = config();
  const base = `http://${cfg.api.host}:${cfg.api.port}`;
  const health = await fetch(`${base}/healthz`).catch(() => undefined);
  if (!health?.ok) throw new Error(`no API at ${base}: start it with npm run up`);
  const token = await mintDevToken(cfg.auth, { sub: 'bench', scopes: ['service'], ttlSeconds: 3600 });
  const rate = Number(values.rate);
  const duration = Number(values.duration);

  const run = (title: string, path: string, opts: Omit<autocannon.Options, 'url'> = {}): Promise<Result> =>
    new Promise<Result>((resolve, reject) => {
      autocannon(
        { url: `${base}${path}`, connections: 20, overallRate: rate, duration, ...opts },
        (err, result) => (err ? reject(err) : resolve(result)),
      );
    }).then((r) => {
      process.stdout.write(
        `${title}: ${r.requests.total} requests, non-2xx ${r.non2xx}, errors ${r.errors}, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms\n`,
      );
      return r;
    });

  const starts = await run('POST /v1/ping', '/v1/ping', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ token: 'bench' }),
  });
  const readyz = await run('GET /readyz', '/readyz');
  summary('api', {
    rate_per_s: rate,
    duration_s: duration,
    start_requests: starts.requests.total,
    start_non2xx: starts.non2xx,
    start_p50_ms: starts.latency.p50,
    start_p99_ms: starts.latency.p99,
    start_max_ms: starts.latency.max,
    readyz_p50_ms: readyz.latency.p50,
    readyz_p99_ms: readyz.latency.p99,
    target_p99_25ms: starts.latency.p99 <= 25 && starts.non2xx === 0 ? 'met' : 'missed',
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
