import { CompressionCodecs, CompressionTypes, Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { compressFrame, decompressFrame } from 'lz4-napi';
import type { Config } from '../config';
import { measureHealth, type Health } from './health';

/**
 * LZ4 for kafkajs (which ships only gzip), over lz4-napi: the standard LZ4 frame format Kafka's own
 * clients write, compressed and decompressed natively off the event loop. Measured on play-tick records
 * (docs/BENCHMARKS.md): 40 % of gzip's CPU to compress (0.72 vs 1.85 µs a tick). Registered when this
 * module loads, so every producer and consumer of the process can use it; gzip records still read.
 */
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  compress: (encoder: { buffer: Buffer }) => compressFrame(encoder.buffer),
  decompress: (buffer: Buffer) => decompressFrame(buffer),
});

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
