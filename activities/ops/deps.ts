import type { ClickHouseClient } from '@clickhouse/client';
import type { Client as OpenSearchClient } from '@opensearch-project/opensearch';
import type { Client as MinioClient } from 'minio';
import type { DatabasePool } from 'slonik';
import type { Config } from '../../lib/config';

/** What the ops jobs work on: every store, and the config (credentials for pg_dump, prefixes, policies). */
export interface OpsDeps {
  pool: DatabasePool;
  clickhouse: ClickHouseClient;
  opensearch: OpenSearchClient;
  minio: MinioClient;
  config: Config;
}
