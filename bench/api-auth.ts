import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ClickHouseClient } from '@clickhouse/client';
import { Client, Connection } from '@temporalio/client';
import type { DatabasePool } from 'slonik';
import { buildApp } from '../api/app';
import { mintDevToken } from '../api/auth/dev-issuer';
import { createVerifier } from '../api/auth/verifier';
import { PlanCatalog } from '../domain/billing/plans';
import type { PaymentProvider } from '../domain/billing/payments';
import { loadConfig } from '../lib/config';
import { summary } from './report';

/**
 * npm run bench:api-auth -- [--requests 20000] [--forged 2000]
 * The API's own cost per request on the play-ticks hot path (POST /v1/play-ticks, 200 valid ticks, a
 * service token the API has seen before, a publisher that drops the ticks): the whole HTTP stack through
 * inject(), no network and no Kafka, so what it measures is the API's CPU per request. And a flood of
 * forged tokens from one address: what each costs once the address has spent its budget. Run it on two
 * versions of the API to compare them (docs/BENCHMARKS.md).
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '20000' },
      forged: { type: 'string', default: '2000' },
      concurrency: { type: 'string', default: '8' },
    },
  });
  const requests = Number(values.requests);
  const forgedCount = Number(values.forged);
  const concurrency = Number(values.concurrency);
  const cfg = loadConfig({
    ...process.env,
    CADENZA_DEV_ISSUER_DIR: mkdtempSync(path.join(tmpdir(), 'cadenza-bench-issuer-')),
    CADENZA_LOG_LEVEL: 'silent',
  });
  const app = await buildApp({
    config: cfg,
    temporal: new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) }),
    verify: await createVerifier(cfg.auth),
    readiness: async () => [],
    publisher: { publish: async () => undefined },
    pool: undefined as unknown as DatabasePool,
    clickhouse: undefined as unknown as ClickHouseClient,
    payments: { provider: undefined as unknown as PaymentProvider, plans: PlanCatalog.builtIn() },
    log: false,
  });
  await app.ready();
  const token = await mintDevToken(cfg.auth, { sub: 'svc-bench', scopes: ['service'], ttlSeconds: 3600 });
  const now = new Date().toISOString();
  const ticks = Array.from({ length: 200 }, () => ({
    event_id: randomUUID(),
    play_id: randomUUID(),
    user_id: randomUUID(),
    track_id: randomUUID(),
    country: 'DE',
    device_id: 'bench-device',
    position_ms: 5000,
    event_time: now,
  }));
  const payload = JSON.stringify({ ticks });
  const post = (authorization: string, remoteAddress = '127.0.0.1') =>
    app.inject({
      method: 'POST',
      url: '/v1/play-ticks',
      remoteAddress,
      headers: { authorization, 'content-type': 'application/json' },
      payload,
    });

  /** Runs `n` requests, `concurrency` at a time; wall time and CPU (user + system) per request. */
  async function measure(n: number, make: (i: number) => Promise<{ statusCode: number }>) {
    const statuses = new Map<number, number>();
    let next = 0;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          const res = await make(next++);
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        }
      }),
    );
    const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return {
      perRequestUs: Math.round((wallUs / n) * 10) / 10,
      cpuPerRequestUs: Math.round(((cpu.user + cpu.system) / n) * 10) / 10,
      statuses: Object.fromEntries(statuses),
    };
  }

  await measure(2000, () => post(`Bearer ${token}`)); // warm-up: JIT, the verified-token memory
  // The auth step alone, as the hot path meets it: a token the API remembers (no signature check).
  const verifier = await createVerifier(cfg.auth);
  await verifier(`Bearer ${token}`);
  const rememberedNs = (() => {
    const remembered = (verifier as { remembered?: (h: string) => unknown }).remembered;
    if (!remembered) return NaN; // a version of the API without the memory lookup
    const n = 500_000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) remembered(`Bearer ${token}`);
    return Number(process.hrtime.bigint() - t0) / n;
  })();
  const hot = await measure(requests, () => post(`Bearer ${token}`));
  const forged = (i: number) => `Bearer ${token.slice(0, -8)}${String(i).padStart(8, 'A').slice(-8)}`;
  const flood = await measure(forgedCount, (i) => post(forged(i), '198.51.100.9'));
  await app.close();
  summary('api-auth', {
    requests,
    ticks_per_request: ticks.length,
    concurrency,
    hot_path_us_per_request: hot.perRequestUs,
    hot_path_cpu_us_per_request: hot.cpuPerRequestUs,
    hot_path_statuses: JSON.stringify(hot.statuses),
    remembered_token_lookup_ns: Math.round(rememberedNs),
    forged_requests: forgedCount,
    forged_us_per_request: flood.perRequestUs,
    forged_cpu_us_per_request: flood.cpuPerRequestUs,
    forged_statuses: JSON.stringify(flood.statuses),
  });
  process.exit(0);
}

void main();
