import type { ClickHouseClient } from '@clickhouse/client';
import type { Client as OpenSearchClient } from '@opensearch-project/opensearch';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Client as MinioClient } from 'minio';
import type { DatabasePool } from 'slonik';
import { createActivities } from '../../activities';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { createMinio } from '../../lib/clients/minio';
import { createOpenSearch } from '../../lib/clients/opensearch';
import { createPostgresPool } from '../../lib/clients/postgres';
import type { Config } from '../../lib/config';
import { migrateClickHouse } from '../../sql/migrate/clickhouse';
import { migratePostgres } from '../../sql/migrate/postgres';
import { generateTicks, type Dataset, type Tick } from '../../scripts/seed/generate';
import { runSeed } from '../../scripts/seed/run';
import { scratchDatabases, scratchSearchAndObjects } from '../../stack/scratch';
import { TASK_QUEUE } from '../../workflows/ops/contract';
import { testConfig, workflowBundle, workflowSinks } from './env';

/**
 * A seeded system of its own for the ops jobs: scratch PostgreSQL and ClickHouse databases (the small seed,
 * recent so partitions and windows hold it), scratch search indices and buckets, and a worker serving the
 * ops queue with the real activities over them, in the test namespace.
 */
export interface OpsWorld {
  cfg: Config;
  pool: DatabasePool;
  clickhouse: ClickHouseClient;
  opensearch: OpenSearchClient;
  minio: MinioClient;
  client: Client;
  data: Dataset;
  ticks: Tick[];
  now: Date;
  drop(): Promise<void>;
}

export async function opsWorld(opts: { seed: number; plays: number }): Promise<OpsWorld> {
  const db = await scratchDatabases(testConfig());
  const objects = await scratchSearchAndObjects(db.config);
  const cfg: Config = { ...db.config, opensearch: objects.config.opensearch, minio: objects.config.minio };
  await migratePostgres(cfg.postgres);
  await migrateClickHouse(cfg.clickhouse);
  // A minute ago: every tick is in the current partitions and inside the jobs' windows, which end now.
  const now = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000);
  const seedOpts = { scale: 'small' as const, seed: opts.seed, now, plays: opts.plays };
  const data = (await runSeed(cfg, { ...seedOpts, via: 'clickhouse' })).data as Dataset;
  const ticks = [...generateTicks(data, seedOpts)];
  const pool = await createPostgresPool(cfg.postgres, 6);
  const clickhouse = createClickHouse(cfg.clickhouse);
  const opensearch = createOpenSearch(cfg.opensearch);
  const minio = createMinio(cfg.minio, { partSize: 5 * 1024 * 1024 });
  const connection = await Connection.connect({ address: cfg.temporal.address });
  const client = new Client({ connection, namespace: cfg.temporal.namespace });
  const worker = await Worker.create({
    connection: await NativeConnection.connect({ address: cfg.temporal.address }),
    namespace: cfg.temporal.namespace,
    taskQueue: TASK_QUEUE,
    workflowBundle: await workflowBundle(),
    sinks: workflowSinks(),
    activities: createActivities({ ops: { pool, clickhouse, opensearch, minio, config: cfg } }),
  });
  const running = worker.run();
  return {
    cfg,
    pool,
    clickhouse,
    opensearch,
    minio,
    client,
    data,
    ticks,
    now,
    drop: async () => {
      worker.shutdown();
      await running;
      await connection.close();
      await Promise.allSettled([pool.end(), clickhouse.close(), opensearch.close()]);
      await objects.drop();
      await db.drop();
    },
  };
}
