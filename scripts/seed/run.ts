import { MultiBar, Presets } from 'cli-progress';
import pLimit from 'p-limit';
import { sql } from 'slonik';
import { refreshDimensions } from '../../activities/analytics/dimensions';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { createKafka, idempotentProducer } from '../../lib/clients/kafka';
import { createPaymentProvider } from '../../lib/clients/payments';
import { createPostgresPool } from '../../lib/clients/postgres';
import { adoptLiveSubscriptions, type AdoptionReport } from '../billing/adopt';
import type { Config } from '../../lib/config';
import { generateDataset, generateTicks, type Dataset, type SeedOptions } from './generate';
import {
  ensureDemoPolicy,
  insertRows,
  insertSeedSettlement,
  openRateVersion,
  publishRateVersion,
  loadTicksToClickHouse,
  POSTGRES_TABLES,
  produceTicks,
} from './load';
import { SettlementAccumulator, tap, type SeedSettlement } from './settlement';
import { seedCatalog, type CatalogSeedReport } from './catalog';
import { createMinio } from '../../lib/clients/minio';
import { createOpenSearch } from '../../lib/clients/opensearch';

export interface RunSeedOptions extends SeedOptions {
  via: 'kafka' | 'clickhouse';
  ifEmpty?: boolean;
  progress?: boolean;
  /**
   * Subscriptions as billing runs them: payment methods tokenised at the payment provider (the sandbox)
   * instead of made-up tokens, and every seeded subscription adopted by a workflow (`npm run seed` does;
   * tests and benches of other slices need neither).
   */
  billing?: boolean;
  /** Search documents for the catalog and real audio for this many tracks (MinIO and OpenSearch needed). */
  catalog?: { audioTracks: number };
}

export interface SeedReport {
  skipped: boolean;
  data?: Dataset;
  settlement?: SeedSettlement;
  ticks: number;
  seconds: number;
  tickRowsPerSecond: number;
  postgres: { rows: number; seconds: number };
  adoption?: AdoptionReport;
  catalog?: CatalogSeedReport;
}

/** Generates the dataset and loads it: PostgreSQL, the ClickHouse dimensions, then the ticks. */
export async function runSeed(cfg: Config, opts: RunSeedOptions): Promise<SeedReport> {
  const pool = await createPostgresPool(cfg.postgres, 4);
  const clickhouse = createClickHouse(cfg.clickhouse);
  const bars = new MultiBar(
    {
      format: ' {name} |{bar}| {value}/{total} {rate}',
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 60_000,
    },
    Presets.shades_classic,
  );
  const bar = (name: string, total: number) =>
    opts.progress
      ? bars.create(total, 0, { name: name.padEnd(18), rate: '' })
      : { increment: (_n?: number, _p?: object) => undefined };
  try {
    if (opts.ifEmpty && (await pool.oneFirst(sql.unsafe`SELECT count(*)::int FROM users`)) > 0) {
      return { skipped: true, ticks: 0, seconds: 0, tickRowsPerSecond: 0, postgres: { rows: 0, seconds: 0 } };
    }
    const started = Date.now();
    const data = generateDataset(opts);
    if (opts.billing) {
      // Charges must reach a real method: each seeded card becomes a sandbox token (test_ok).
      const provider = createPaymentProvider(cfg.payments);
      const limit = pLimit(16);
      const b = bar('payment methods', data.paymentMethods.length);
      await Promise.all(
        data.paymentMethods.map((m) =>
          limit(async () => {
            const card = await provider.tokenizeTestMethod('test_ok');
            Object.assign(m, { provider_token: card.token, brand: card.brand, last4: card.last4 });
            b.increment(1);
          }),
        ),
      );
    }
    const pgStart = Date.now();
    let pgRows = 0;
    await openRateVersion(pool, 1);
    for (const t of POSTGRES_TABLES) {
      const rows = t.rows(data);
      const b = bar(t.table, rows.length);
      await insertRows(pool, t.table, t.columns, rows, (n) => b.increment(n));
      pgRows += rows.length;
    }
    await publishRateVersion(pool, 1);
    await ensureDemoPolicy(pool);
    const pgSeconds = (Date.now() - pgStart) / 1000;
    await refreshDimensions(pool, clickhouse);
    const settlement = new SettlementAccumulator();
    const ticks = () => tap(generateTicks(data, opts), (t) => settlement.observe(t));
    const tickBar = bar(`ticks → ${opts.via}`, opts.plays ?? 0);
    const tickStart = Date.now();
    let loaded = 0;
    const onRows = (n: number) => {
      loaded += n;
      tickBar.increment(0, {
        rate: `${loaded} rows, ${Math.round(loaded / Math.max(0.001, (Date.now() - tickStart) / 1000))} rows/s`,
      });
    };
    let sent: number;
    if (opts.via === 'kafka') {
      const producer = idempotentProducer(createKafka(cfg.kafka, 'cadenza-seed'));
      await producer.connect();
      try {
        sent = await produceTicks(producer, cfg.kafka.topics.ticks, ticks(), onRows);
      } finally {
        await producer.disconnect();
      }
    } else {
      sent = await loadTicksToClickHouse(clickhouse, ticks(), onRows);
    }
    const tickSeconds = (Date.now() - tickStart) / 1000;
    const settled = settlement.settle(data, opts.now);
    await insertSeedSettlement(pool, settled, opts.now);
    // Every seeded subscription gets its workflow (they renew from their current period on).
    const adoption = opts.billing ? await adoptLiveSubscriptions(cfg) : undefined;
    let catalog: CatalogSeedReport | undefined;
    if (opts.catalog) {
      const opensearch = createOpenSearch(cfg.opensearch);
      const docBar = bar(
        'search documents',
        data.tracks.length + data.albums.length + data.artists.length + data.playlists.length,
      );
      try {
        catalog = await seedCatalog(
          {
            pool,
            clickhouse,
            opensearch,
            minio: createMinio(cfg.minio),
            bucketPrefix: cfg.minio.bucketPrefix,
            indexPrefix: cfg.opensearch.indexPrefix,
          },
          data,
          { audioTracks: opts.catalog.audioTracks, onDocuments: (n) => docBar.increment(n) },
        );
      } finally {
        await opensearch.close();
      }
    }
    return {
      adoption,
      skipped: false,
      data,
      settlement: settled,
      ticks: sent,
      seconds: (Date.now() - started) / 1000,
      tickRowsPerSecond: sent / Math.max(tickSeconds, 0.001),
      postgres: { rows: pgRows, seconds: pgSeconds },
      catalog,
    };
  } finally {
    bars.stop();
    await Promise.allSettled([pool.end(), clickhouse.close()]);
  }
}
