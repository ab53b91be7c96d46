import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import type { Config } from '../config';
import { measureHealth, type Health } from './health';

export function createKafka(k: Config['kafka'], clientId = 'cadenza'): Kafka {
  return new Kafka({
    clientId,
    brokers: k.brokers,
    logLevel: logLevel.WARN,
    connectionTimeout: 3000,
    retry: { retries: 5, initialRetryTime: 200 },
  });
}

export function kafkaHealth(kafka: Kafka): Promise<Health> {
  return measureHealth('kafka', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.describeCluster();
    } finally {
      await admin.disconnect();
    }
  });
}

/**
 * An idempotent producer (no duplicates from its own retries), keyed messages spread by the murmur2
 * partitioner (Java-client compatible). Its retries are not capped: kafkajs refuses exactly-once
 * guarantees with a cap; callers that must answer quickly put their own deadline around send().
 */
export function idempotentProducer(kafka: Kafka): Producer {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 5000 },
  });
}
