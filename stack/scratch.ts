import { randomBytes, randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { sql } from 'slonik';
import { createClickHouse } from '../lib/clients/clickhouse';
import { createKafka } from '../lib/clients/kafka';
import { migrateClickHouse } from '../sql/migrate/clickhouse';
import { migratePostgres } from '../sql/migrate/postgres';
import { createMinio } from '../lib/clients/minio';
import { createOpenSearch, SEARCH_VERSION } from '../lib/clients/opensearch';
import { LOCKED_BUCKETS, migrateMinio } from '../sql/migrate/minio';
import { BUCKETS, bucketName } from '../lib/clients/minio';
import { migrateOpenSearch } from '../sql/migrate/opensearch';
import { createPostgresPool } from '../lib/clients/postgres';
import { ch, ident } from '../lib/clickhouse-sql';
import type { Config } from '../lib/config';
import { TEMPLATE } from './services/postgres';

/**
 * Throw-away databases for a test file or a benchmark: a PostgreSQL database made from the stack's template
 * (which carries pg_partman) and (unless asked not to) a ClickHouse database, both empty. drop() removes them.
 */
export async function scratchDatabases(
  base: Config,
  opts: { clickhouse?: boolean } = {},
): Promise<{ config: Config; drop: () => Promise<void> }> {
  const withClickHouse = opts.clickhouse ?? true;
  const name = `cadenza_t_${randomBytes(4).toString('hex')}`;
  const admin = await createPostgresPool(base.postgres, 1);
  await admin.query(
    sql.unsafe`CREATE DATABASE ${sql.identifier([name])} TEMPLATE ${sql.identifier([TEMPLATE])}`,
  );
  const chServer = withClickHouse ? createClickHouse(base.clickhouse, null) : undefined;
  await chServer?.command({ query: ch`CREATE DATABASE ${ident(name)}`.text });
  const config: Config = {
    ...base,
    postgres: { ...base.postgres, database: name },
    clickhouse: { ...base.clickhouse, database: name },
  };
  return {
    config,
    drop: async () => {
      await admin.query(sql.unsafe`DROP DATABASE IF EXISTS ${sql.identifier([name])} WITH (FORCE)`);
      await chServer?.command({ query: ch`DROP DATABASE IF EXISTS ${ident(name)}`.text });
      await Promise.allSettled([admin.end(), chServer?.close()]);
    },
  };
}

export interface TickPipeline {
  config: Config;
  kafka: Kafka;
  topics: { ticks: string; dlq: string };
  id: string;
  drop(): Promise<void>;
}

/** Migrated scratch databases and a play-ticks topic pair of their own, removed by drop(). */
export async function scratchTickPipeline(
  base: Config,
  name: string,
  partitions: number,
): Promise<TickPipeline> {
  const id = randomUUID().slice(0, 8);
  const topics = { ticks: `play-ticks-${name}-${id}`, dlq: `play-ticks-${name}-${id}.dlq` };
  const db = await scratchDatabases(base);
  await migratePostgres(db.config.postgres);
  await migrateClickHouse(db.config.clickhouse);
  const kafka = createKafka(db.config.kafka, `${name}-${id}`);
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: topics.ticks, numPartitions: partitions },
      { topic: topics.dlq, numPartitions: 1 },
    ],
  });
  await admin.disconnect();
  return {
    config: db.config,
    kafka,
    topics,
    id,
    drop: async () => {
      const a = kafka.admin();
      await a.connect();
      await a.deleteTopics({ topics: [topics.ticks, topics.dlq] }).catch(() => undefined);
      await a.disconnect();
      await db.drop();
    },
  };
}

/**
 * Throw-away search indices and buckets for a test file: the config gets a fresh index and bucket prefix,
 * both stores are migrated under it (locked buckets keep their objects one day), and drop() removes the
 * indices and every bucket it can (a write-once bucket that holds objects stays until its lock ends).
 */
export async function scratchSearchAndObjects(
  base: Config,
): Promise<{ config: Config; drop: () => Promise<void> }> {
  const prefix = `t${randomBytes(4).toString('hex')}-`;
  const config: Config = {
    ...base,
    opensearch: { ...base.opensearch, indexPrefix: prefix },
    minio: { ...base.minio, bucketPrefix: prefix },
  };
  const os = createOpenSearch(config.opensearch);
  const minio = createMinio(config.minio);
  await migrateOpenSearch(os, SEARCH_VERSION, prefix);
  await migrateMinio(minio, { prefix, lockDays: 1 });
  return {
    config,
    drop: async () => {
      await os.indices.delete({ index: `${prefix}*` }).catch(() => undefined);
      const templates = await os.indices.getIndexTemplate({ name: `cadenza-${prefix}*` }).catch(() => null);
      for (const t of (templates?.body?.index_templates ?? []) as { name: string }[]) {
        await os.indices.deleteIndexTemplate({ name: t.name }).catch(() => undefined);
      }
      await os.close();
      for (const bucket of BUCKETS) {
        if (LOCKED_BUCKETS.includes(bucket)) continue;
        const name = bucketName(bucket, prefix);
        const keys: string[] = [];
        for await (const o of minio.listObjectsV2(name, '', true) as AsyncIterable<{ name?: string }>) {
          if (o.name) keys.push(o.name);
        }
        if (keys.length) await minio.removeObjects(name, keys);
        await minio.removeBucket(name).catch(() => undefined);
      }
    },
  };
}
