import type { Kafka } from 'kafkajs';

/** Play-ticks are keyed by play_id, so a play's ticks stay ordered on one partition. */
export const TOPICS = {
  playTicks: { topic: 'play-ticks', numPartitions: 6 },
  playTicksDlq: { topic: 'play-ticks.dlq', numPartitions: 1 },
} as const;

/** Creates the topics that are missing and grows partition counts that are too small; idempotent. */
export async function migrateKafka(kafka: Kafka): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const wanted = Object.values(TOPICS);
    const existing = new Set(await admin.listTopics());
    const missing = wanted.filter((t) => !existing.has(t.topic));
    if (missing.length) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((t) => ({
          ...t,
          replicationFactor: 1,
          configEntries: [{ name: 'retention.ms', value: String(7 * 24 * 3600 * 1000) }],
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
