import type { ClickHouseClient } from '@clickhouse/client';
import type { Client as Minio } from 'minio';
import type pg from 'pg';
import type { DatabasePool } from 'slonik';
import { createPayoutActivities } from './payouts';
import { createRunActivities } from './runs';
import { createSnapshotActivities } from './snapshot';
import { createStatementActivities } from './statement';

/** What the settlement's activities are built from; tests pass real clients on scratch stores. */
export interface RoyaltiesDeps {
  pool: DatabasePool;
  /** Plain pg connections for COPY streams. */
  copyPool: pg.Pool;
  /** A client whose requests may run long (a month's aggregation). */
  clickhouse: ClickHouseClient;
  minio: Minio;
  /** The write-once statements bucket: bucketName('royalties', cfg.minio.bucketPrefix). */
  bucket: string;
}

export function createRoyaltiesActivities(deps: RoyaltiesDeps) {
  return {
    ...createRunActivities(deps),
    ...createSnapshotActivities(deps),
    ...createPayoutActivities(deps),
    ...createStatementActivities(deps),
  };
}

export type RoyaltiesActivities = ReturnType<typeof createRoyaltiesActivities>;
