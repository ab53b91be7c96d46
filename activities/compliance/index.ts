import type { ClickHouseClient } from '@clickhouse/client';
import type { Client as OpenSearch } from '@opensearch-project/opensearch';
import type { Client as Temporal } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import type { Client as Minio } from 'minio';
import type { DatabasePool } from 'slonik';
import type { PaymentProvider } from '../../domain/billing/payments';
import { createCertificateActivities } from './certificate';
import { createClickHouseErasureActivities } from './clickhouse';
import { createExportActivities } from './export';
import { createObjectErasureActivities } from './objects';
import { createPostgresErasureActivities } from './postgres';
import { createRequestActivities } from './requests';
import { createSearchErasureActivities } from './search';
import { createStopNewDataActivities } from './stop-new-data';
import { createSubscriptionEndActivities } from './subscriptions';

/** Every store GDPR erasure and export reach, passed in so tests give real ones (or proxied ones). */
export interface ComplianceDeps {
  pool: DatabasePool;
  clickhouse: ClickHouseClient;
  opensearch: OpenSearch;
  minio: Minio;
  kafka: Kafka;
  /** Subscriptions end through their workflow's cancel update (an explicit client activity). */
  temporal: Temporal;
  provider: PaymentProvider;
  indexPrefix: string;
  bucketPrefix: string;
  topics: { ticks: string; dlq: string };
  /** Written into every certificate (the package version and the erasure procedure's). */
  codeVersion: string;
}

export function createComplianceActivities(d: ComplianceDeps) {
  return {
    ...createRequestActivities(d.pool),
    ...createStopNewDataActivities(d.pool),
    ...createSubscriptionEndActivities(d),
    ...createPostgresErasureActivities(d.pool),
    ...createClickHouseErasureActivities(d),
    ...createSearchErasureActivities(d),
    ...createObjectErasureActivities(d),
    ...createCertificateActivities(d),
    ...createExportActivities(d),
  };
}

export type ComplianceActivities = ReturnType<typeof createComplianceActivities>;
