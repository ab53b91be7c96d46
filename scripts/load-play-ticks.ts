import { parseArgs } from 'node:util';
import { mintDevToken } from '../api/auth/dev-issuer';
import { config } from '../lib/config';
import { percentile, runFleet } from './load/fleet';

/** npm run load:play-ticks -- --rate R --duration D --users U: a fleet of players against the running API. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '2000' },
      duration: { type: 'string', default: '30' },
      users: { type: 'string', default: '5000' },
      url: { type: 'string' },
    },
  });
  const cfg = config();
  const url = values.url ?? `http://${cfg.api.host}:${cfg.api.port}`;
  if (!/^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(url))
    throw new Error('the load generator only targets loopback');
  const token = await mintDevToken(cfg.auth, {
    sub: 'load-generator',
    scopes: ['service'],
    ttlSeconds: 3600,
  });
  const r = await runFleet({
    url,
    token,
    rate: Number(values.rate),
    durationS: Number(values.duration),
    users: Number(values.users),
  });
  process.stdout.write(
    `load: sent=${r.sent} accepted=${r.accepted} rejected=${r.rejected} failed_requests=${r.failedRequests} ticks_per_s=${Math.round(r.accepted / r.seconds)} ` +
      `request_p50_ms=${percentile(r.latenciesMs, 50).toFixed(1)} request_p99_ms=${percentile(r.latenciesMs, 99).toFixed(1)}\n`,
  );
}

main().catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
