import type { ClickHouseClient } from '@clickhouse/client';
import type { Client as OpenSearch } from '@opensearch-project/opensearch';
import type { Client as MinioClient } from 'minio';
import type { DatabasePool } from 'slonik';
import { createCatalogActivities } from './catalog';
import { createChangeActivities } from './changes';
import { createMediaActivities } from './media';
import { createObjectActivities } from './objects';
import { createPlayCountActivities } from './play-counts';
import { createProjectionActivities } from './projections';
import { createReindexActivities } from './reindex';

/** What the catalog slice's activities are built from; tests pass real clients and scratch prefixes. */
export interface CatalogDeps {
  pool: DatabasePool;
  minio: MinioClient;
  opensearch: OpenSearch;
  clickhouse: ClickHouseClient;
  bucketPrefix: string;
  indexPrefix: string;
  /** The largest audio upload ingestion accepts (bytes). */
  maxUploadBytes: number;
  /** Where media steps keep temporary files (default: the OS temp folder). */
  workDir?: string;
}

/** Every catalog activity, by the name the catalog workflows call it. */
export function createCatalogSliceActivities(deps: CatalogDeps) {
  return {
    ...createMediaActivities(deps),
    ...createCatalogActivities(deps),
    ...createObjectActivities(deps),
    ...createProjectionActivities(deps),
    ...createChangeActivities(deps),
    ...createPlayCountActivities(deps),
    ...createReindexActivities(deps),
  };
}

export type CatalogSliceActivities = ReturnType<typeof createCatalogSliceActivities>;
