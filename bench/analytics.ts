import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { buildApp } from '../api/app';
import { mintDevToken } from '../api/auth/dev-issuer';
import { createVerifier } from '../api/auth/verifier';
import { PlanCatalog } from '../domain/billing/plans';
import { createClickHouse } from '../lib/clients/clickhouse';
import { createPostgresPool } from '../lib/clients/postgres';
import { config } from '../lib/config';
import { percentile } from '../scripts/load/fleet';
import { migrateClickHouse } from '../sql/migrate/clickhouse';
import { migratePostgres } from '../sql/migrate/postgres';
import { createPaymentProvider } from '../lib/clients/payments';
import { SCALES, type ScaleName } from '../scripts/seed/generate';
import { runSeed } from '../scripts/seed/run';
import { scratchDatabases } from '../stack/scratch';
import { summary } from './report';

/**
 * npm run bench:analytics -- [--scale medium] [--runs 7]
 * The analytics endpoints over seeded data (the data-model issue's `medium` scale by default), in scratch
 * databases of the running stack (creator stats for the artist of the most played track, bot suspects for
 * one of its listeners): each endpoint is asked once to warm up, then `runs` times over HTTP;
 * its median and slowest answer in ms. Target (play-ticks issue): each well under a second, which we
 * read as a median of at most 500 ms.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string', default: 'medium' },
      runs: { type: 'string', default: '7' },
    },
  });
  const scale = values.scale as ScaleName;
  if (!(scale in SCALES)) throw new Error(`--scale: one of ${Object.keys(SCALES).join(', ')}`);
  const runs = Number(values.runs);
  const cfg = config();
  const db = await scratchDatabases(cfg);
  const now = new Date();
  const pool = await createPostgresPool(db.config.postgres, 4);
  const clickhouse = createClickHouse(db.config.clickhouse);
  const temporal = new Client({
    connection: Connection.lazy({ address: cfg.temporal.address }),
    namespace: cfg.temporal.namespace,
  });
  try {
    await migratePostgres(db.config.postgres);
    await migrateClickHouse(db.config.clickhouse);
    const seeded = await runSeed(db.config, { scale, seed: 3, now, via: 'clickhouse', progress: true });
    process.stdout.write(`seeded ${scale}: ${seeded.ticks} ticks in ${seeded.seconds.toFixed(0)} s\n`);
    const app = await buildApp({
      config: db.config,
      temporal,
      verify: await createVerifier(cfg.auth),
      publisher: { publish: async () => undefined },
      pool,
      clickhouse,
      payments: { provider: createPaymentProvider(cfg.payments), plans: PlanCatalog.builtIn() },
      readiness: async () => [],
      log: false,
    });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const top = await (
        await clickhouse.query({
          query: `SELECT toString(any(t.artist_id)) AS artist, toString(any(p.user_id)) AS user
                  FROM (SELECT track_id, any(user_id) AS user_id FROM plays GROUP BY track_id ORDER BY count() DESC LIMIT 1) AS p
                  ALL INNER JOIN (SELECT track_id, artist_id FROM dim_tracks FINAL) AS t USING track_id`,
          format: 'JSONEachRow',
        })
      ).json<{ artist: string; user: string }>();
      const { artist, user } = top[0]!;
      const ops = await mintDevToken(cfg.auth, {
        sub: 'bench-analytics',
        scopes: ['operator'],
        ttlSeconds: 3600,
      });
      const at = `at=${encodeURIComponent(now.toISOString())}`;
      const from = new Date(now.getTime() - 30 * 86_400_000).toISOString().slice(0, 10);
      const to = now.toISOString().slice(0, 10);
      const endpoints: Record<string, string> = {
        premium_top_countries: `/v1/analytics/premium-top-countries?days=30&${at}`,
        account_sharing: `/v1/analytics/account-sharing?${at}`,
        early_churn: `/v1/analytics/early-churn?days=30&${at}`,
        bot_suspects: `/v1/analytics/bot-suspects?userId=${user}&${at}`,
        retention_cohorts: `/v1/analytics/retention-cohorts?days=30&${at}`,
        campaign_attribution: '/v1/analytics/campaign-attribution',
        artist_stats: `/v1/artists/${artist}/stats?from=${from}&to=${to}`,
      };
      const results: Record<string, number> = {};
      let slowestMedian = 0;
      for (const [name, url] of Object.entries(endpoints)) {
        const ms: number[] = [];
        for (let i = 0; i <= runs; i++) {
          const t0 = performance.now();
          const res = await fetch(`${base}${url}`, { headers: { authorization: `Bearer ${ops}` } });
          const text = await res.text();
          if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
          if (i > 0) ms.push(performance.now() - t0);
        }
        results[`${name}_p50_ms`] = percentile(ms, 50);
        results[`${name}_max_ms`] = Math.max(...ms);
        slowestMedian = Math.max(slowestMedian, percentile(ms, 50));
      }
      summary('analytics', {
        scale,
        ticks: seeded.ticks,
        plays: SCALES[scale].plays,
        runs,
        ...results,
        target_each_well_under_1s: slowestMedian <= 500 ? 'met' : 'missed',
      });
    } finally {
      await app.close();
    }
  } finally {
    await Promise.allSettled([clickhouse.close(), pool.end(), temporal.connection.close()]);
    await db.drop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
