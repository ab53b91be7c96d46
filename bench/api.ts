import { parseArgs } from 'node:util';
import autocannon, { type Result } from 'autocannon';
import { mintDevToken } from '../api/auth/dev-issuer';
import { config } from '../lib/config';
import { summary } from './report';

/**
 * npm run bench:api -- [--rates 50,100,200] [--duration 20]
 * Against the running API and worker (npm run up): start-workflow latency (POST /v1/ping, a new
 * workflow per request, which the worker then runs) and /readyz, each at fixed request rates.
 * Target: p99 ≤ 25 ms at 200 starts/s.
 */
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
  const rates = values.rates.split(',').map(Number);
  const duration = Number(values.duration);

  const run = (
    title: string,
    rate: number,
    path: string,
    opts: Omit<autocannon.Options, 'url'> = {},
  ): Promise<Result> =>
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

  const out: Record<string, number | string> = { duration_s: duration };
  let atTarget: Result | undefined;
  for (const rate of rates) {
    const starts = await run('POST /v1/ping', rate, '/v1/ping', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'bench' }),
    });
    out[`start_${rate}_achieved_per_s`] = starts.requests.total / duration;
    out[`start_${rate}_p50_ms`] = starts.latency.p50;
    out[`start_${rate}_p99_ms`] = starts.latency.p99;
    out[`start_${rate}_non2xx`] = starts.non2xx;
    if (rate === 200) atTarget = starts;
    // Let the worker drain the runs this rate started before measuring the next one.
    await new Promise((r) => setTimeout(r, 15_000));
  }
  const readyz = await run('GET /readyz', 200, '/readyz');
  out.readyz_200_p50_ms = readyz.latency.p50;
  out.readyz_200_p99_ms = readyz.latency.p99;
  out.target_p99_25ms_at_200 = atTarget
    ? atTarget.latency.p99 <= 25 && atTarget.non2xx === 0
      ? 'met'
      : 'missed'
    : 'not-run';
  summary('api', out);
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
