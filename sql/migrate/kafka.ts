import type { Kafka } from 'kafkajs';
import type { Config } from '../../lib/config';

/** Play-tick data stays in Kafka this long (the GDPR proof states it; the sink drops erased users' ticks). */
export const TICKS_RETENTION_MS = 7 * 24 * 3600 * 1000;

/** The topics the configuration names: play-ticks (keyed by play_id) and its dead-letter topic. */
export function kafkaTopics(k: Config['kafka']) {
  return [
    { topic: k.topics.ticks, numPartitions: k.ticksPartitions },
    { topic: k.topics.dlq, numPartitions: 1 },
  ];
}

/** Creates the topics that are missing and grows partition counts that are too small; idempotent. */
export async function migrateKafka(kafka: Kafka, k: Config['kafka']): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const wanted = kafkaTopics(k);
    const existing = new Set(await admin.listTopics());
    const missing = wanted.filter((t) => !existing.has(t.topic));
    if (missing.length) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((t) => ({
          ...t,
          replicationFactor: 1,
          configEntries: [{ name: 'retention.ms', value: String(TICKS_RETENTION_MS) }],
        })),
      });
    }
    const meta = await admin.fetchTopicMetadata({ topics: wanted.map((t) => t.topic) });
    for (const t of wanted) {
      const have = meta.topics.find((m) => m.name === t.topic)?.partitions.length ?? 0;
      if (have < t.numPartitions)
        await admin.createPartitions({ topicPartitions: [{ topic: t.topic, count: t.numPartitions }] });
    }
    return missing.map((t) => t.topic);
  } finally {
    await admin.disconnect();
  }
}
