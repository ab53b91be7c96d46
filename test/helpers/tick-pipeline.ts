import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { createKafka } from '../../lib/clients/kafka';
import type { Config } from '../../lib/config';
import { migrateClickHouse } from '../../lib/migrate/clickhouse';
import { migratePostgres } from '../../lib/migrate/postgres';
import { scratchDatabases } from '../../stack/scratch';
import { testConfig } from './env';

export interface TickPipeline {
  config: Config;
  kafka: Kafka;
  topics: { ticks: string; dlq: string };
  id: string;
  drop(): Promise<void>;
}

/** Migrated scratch databases and a play-ticks topic pair of the test's own, removed by drop(). */
export async function scratchTickPipeline(name: string, partitions: number): Promise<TickPipeline> {
  const id = randomUUID().slice(0, 8);
  const topics = { ticks: `play-ticks-${name}-${id}`, dlq: `play-ticks-${name}-${id}.dlq` };
  const db = await scratchDatabases(testConfig());
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
