import { randomUUID } from 'node:crypto';
import { sql } from 'slonik';
import { createClickHouse, clickHouseHealth } from '../../lib/clients/clickhouse';
import { createKafka, kafkaHealth } from '../../lib/clients/kafka';
import { createMinio, minioHealth } from '../../lib/clients/minio';
import { createOpenSearch, openSearchHealth } from '../../lib/clients/opensearch';
import { createPostgresPool, postgresHealth } from '../../lib/clients/postgres';
import { Connection } from '@temporalio/client';
import { temporalHealth } from '../../lib/clients/temporal';
import { testConfig } from '../helpers/env';

/** Smoke: each real service of the native stack accepts a write and gives it back. */
const cfg = testConfig();
const id = randomUUID().replace(/-/g, '');

describe('stores (real services from npm run stack -- up)', () => {
  it('PostgreSQL: writes and reads back, pg_partman is installed', async () => {
    const pool = await createPostgresPool(cfg.postgres, 2);
    try {
      expect((await postgresHealth(pool)).ok).toBe(true);
      const value = await pool.transaction(async (tx) => {
        await tx.query(
          sql.unsafe`CREATE TEMP TABLE smoke (id text PRIMARY KEY, n numeric(12,2)) ON COMMIT DROP`,
        );
        await tx.query(sql.unsafe`INSERT INTO smoke VALUES (${id}, ${'12.34'})`);
        return tx.oneFirst(sql.unsafe`SELECT n::text FROM smoke WHERE id = ${id}`);
      });
      expect(value).toBe('12.34');
      const partman = await pool.maybeOneFirst(
        sql.unsafe`SELECT extversion FROM pg_extension WHERE extname = 'pg_partman'`,
      );
      expect(partman).toEqual(expect.any(String));
    } finally {
      await pool.end();
    }
  });

  it('ClickHouse: writes a row and reads it back', async () => {
    const ch = createClickHouse(cfg.clickhouse, null);
    try {
      expect((await clickHouseHealth(ch)).ok).toBe(true);
      const table = `default.smoke_${id}`;
      await ch.command({
        query: `CREATE TABLE ${table} (id String, n UInt32) ENGINE = MergeTree ORDER BY id`,
      });
      try {
        await ch.insert({ table, values: [{ id, n: 42 }], format: 'JSONEachRow' });
        const rows = await (
          await ch.query({ query: `SELECT id, n FROM ${table}`, format: 'JSONEachRow' })
        ).json<{ id: string; n: number }>();
        expect(rows).toEqual([{ id, n: 42 }]);
      } finally {
        await ch.command({ query: `DROP TABLE ${table}` });
      }
    } finally {
      await ch.close();
    }
  });

  it('OpenSearch: indexes a document and finds it', async () => {
    const os = createOpenSearch(cfg.opensearch);
    const index = `smoke-${id}`;
    try {
      expect((await openSearchHealth(os)).ok).toBe(true);
      await os.indices.create({ index, body: { settings: { number_of_replicas: 0 } } });
      await os.index({ index, id, body: { title: 'Smoke on the Water' }, refresh: true });
      const { body } = await os.search({ index, body: { query: { match: { title: 'water' } } } });
      expect(body.hits.hits.map((h) => h._id)).toEqual([id]);
    } finally {
      await os.indices.delete({ index }).catch(() => undefined);
      await os.close();
    }
  });

  it('MinIO: puts an object and gets it back', async () => {
    const minio = createMinio(cfg.minio);
    const bucket = `smoke-${id}`.slice(0, 40);
    expect((await minioHealth(minio)).ok).toBe(true);
    await minio.makeBucket(bucket);
    try {
      await minio.putObject(bucket, 'hello.txt', Buffer.from('hello cadenza'));
      const stream = await minio.getObject(bucket, 'hello.txt');
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('hello cadenza');
    } finally {
      await minio.removeObject(bucket, 'hello.txt');
      await minio.removeBucket(bucket);
    }
  });

  it('Kafka: produces a message and consumes it back', async () => {
    const kafka = createKafka(cfg.kafka, 'smoke');
    expect((await kafkaHealth(kafka)).ok).toBe(true);
    const topic = `smoke-${id}`;
    const admin = kafka.admin();
    await admin.connect();
    const producer = kafka.producer();
    const consumer = kafka.consumer({ groupId: `smoke-${id}` });
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: [{ key: id, value: 'tick' }] });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const received = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no message within 30 s')), 30_000);
        void consumer.run({
          eachMessage: async ({ message }) => {
            clearTimeout(timer);
            resolve(`${message.key?.toString()}:${message.value?.toString()}`);
          },
        });
      });
      expect(received).toBe(`${id}:tick`);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  }, 60_000);

  it('Temporal dev server: answers its health check', async () => {
    const connection = await Connection.connect({ address: cfg.temporal.address });
    try {
      expect((await temporalHealth(connection)).ok).toBe(true);
    } finally {
      await connection.close();
    }
  });
});
