import { Kafka, logLevel } from 'kafkajs';
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
