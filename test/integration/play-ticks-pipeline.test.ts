import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { FastifyInstance } from 'fastify';
import type { Kafka } from 'kafkajs';
import pino from 'pino';
import { Registry } from 'prom-client';
import { sql, type DatabasePool } from 'slonik';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { createPostgresPool } from '../../lib/clients/postgres';
import { PlayTickProducer } from '../../api/lib/play-tick-producer';
import type { PlayTick } from '../../domain/play-ticks/ticks';
import { TickRows } from '../../domain/play-ticks/rows';
import { scratchTickPipeline, type TickPipeline } from '../helpers/tick-pipeline';
import { PlayTickSink } from '../../workers/sink/sink';
import { SuppressionList } from '../../workers/sink/suppressions';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';

/**
 * API → Kafka → sink → ClickHouse with the real services: duplicates collapse by event_id, malformed
 * records land in the DLQ with their reason, and suppressed users' ticks never reach ClickHouse.
 */
describe('play-tick pipeline', () => {
  let db: TickPipeline;
  let kafka: Kafka;
  let pool: DatabasePool;
  let ch: ClickHouseClient;
  let producer: PlayTickProducer;
  let app: FastifyInstance;
  let sink: PlayTickSink;
  let suppressions: SuppressionList;
  const registry = new Registry();
  const suppressedUser = randomUUID();

  beforeAll(async () => {
    db = await scratchTickPipeline('it', 3);
    kafka = db.kafka;
    pool = await createPostgresPool(db.config.postgres, 2);
    await pool.query(
      sql.unsafe`INSERT INTO play_suppressions (user_id, reason) VALUES (${suppressedUser}, 'gdpr erasure test')`,
    );
    suppressions = new SuppressionList(pool);
    await suppressions.refresh();
    ch = createClickHouse(db.config.clickhouse);
    producer = new PlayTickProducer(kafka, db.topics.ticks, 10_000);
    const cfg = withTempIssuer(db.config);
    app = await testApp(cfg, { publisher: producer });
    sink = new PlayTickSink(
      kafka,
      ch,
      suppressions,
      pino({ level: 'silent' }),
      {
        groupId: `sink-it-${db.id}`,
        minBatchBytes: 1,
        maxWaitMs: 100,
        partitionsConcurrently: 2,
        threads: 2, // the conversion threads, as the sink process runs them
        insertsInFlight: 2,
        insertIntervalMs: 0,
        topics: db.topics,
      },
      registry,
    );
    await sink.start();
    (app as unknown as { token: string }).token = await tokenFor(cfg, 'svc-it', ['service']);
  }, 120_000);

  afterAll(async () => {
    await sink?.stop();
    await producer?.close();
    await app?.close();
    await ch?.close();
    await pool?.end();
    await db?.drop();
  });

  const makeTicks = (n: number, user = randomUUID()): PlayTick[] => {
    const play = randomUUID();
    const track = randomUUID();
    const start = Date.now() - 600_000;
    return Array.from({ length: n }, (_, k) => ({
      event_id: randomUUID(),
      play_id: play,
      user_id: user,
      track_id: track,
      country: 'DE',
      device_id: 'web-1',
      position_ms: (k + 1) * 5000,
      event_time: new Date(start + (k + 1) * 5000).toISOString(),
    }));
  };

  async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const v = await probe();
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it('lands every accepted tick once, drops suppressed users, and sends malformed records to the DLQ', async () => {
    const token = (app as unknown as { token: string }).token;
    const plays = Array.from({ length: 20 }, () => makeTicks(12));
    const suppressed = makeTicks(7, suppressedUser);
    const all = [...plays.flat(), ...suppressed];
    for (let i = 0; i < all.length; i += 100) {
      const batch = all.slice(i, i + 100);
      const res = await app.inject({
        method: 'POST',
        url: '/v1/play-ticks',
        headers: bearer(token),
        payload: { ticks: batch },
      });
      expect(res.statusCode).toBe(202);
      expect(res.json().accepted).toBe(batch.length);
    }
    // A client retry sends the first 50 again: duplicates must collapse.
    const again = await app.inject({
      method: 'POST',
      url: '/v1/play-ticks',
      headers: bearer(token),
      payload: { ticks: all.slice(0, 50) },
    });
    expect(again.json().accepted).toBe(50);
    // A record that never came through the API: not JSON.
    const raw = kafka.producer();
    await raw.connect();
    await raw.send({ topic: db.topics.ticks, messages: [{ key: 'bad', value: '{"event_id": oops' }] });
    // A JSON array record (the API's format before rows) with one good and one bad tick: the good one lands.
    // The good one never passed the API: upper-case UUIDs, and backslashes TabSeparated must not read
    // as escapes.
    const [plain] = makeTicks(1);
    const good = {
      ...(plain as PlayTick),
      event_id: (plain as PlayTick).event_id.toUpperCase(),
      device_id: 'tv\\N\\t\\',
    };
    const bad = { ...makeTicks(1)[0], position_ms: -5 };
    await raw.send({
      topic: db.topics.ticks,
      messages: [{ key: 'mixed', value: JSON.stringify([good, bad]) }],
    });
    // A row record (the API's format) damaged in its second row: refused whole, its first row too.
    const rows = new TickRows();
    for (const t of makeTicks(2)) rows.add(t);
    const damaged = Buffer.from(rows.bytes());
    damaged.writeUInt32LE(90_000_000, damaged.length - 8);
    await raw.send({ topic: db.topics.ticks, messages: [{ key: 'damaged', value: damaged }] });
    await raw.disconnect();

    const expected = plays.flat().length + 1;
    const q = async <T>(query: string) => (await ch.query({ query, format: 'JSONEachRow' })).json<T>();
    await until('all ticks in ClickHouse', async () => {
      const [row] = await q<{ n: string }>('SELECT uniqExact(event_id) AS n FROM play_ticks');
      return Number(row?.n) === expected ? true : undefined;
    });
    await ch.command({ query: 'OPTIMIZE TABLE play_ticks FINAL' });
    expect(await q('SELECT count() AS n FROM play_ticks')).toEqual([{ n: String(expected) }]);
    expect(
      await q(
        `SELECT toString(event_id) AS id, device_id FROM play_ticks WHERE play_id = toUUID('${good.play_id}')`,
      ),
    ).toEqual([{ id: good.event_id.toLowerCase(), device_id: 'tv\\N\\t\\' }]);
    expect(
      await q(`SELECT count() AS n FROM play_ticks WHERE user_id = toUUID('${suppressedUser}')`),
    ).toEqual([{ n: '0' }]);
    // Every field arrives as sent (the API writes ClickHouse's own row format; DateTime keeps seconds).
    // (In the query the aliases, strings, shadow the columns.)
    const stored = await q<Omit<PlayTick, 'event_time'> & { event_time: number }>(
      `SELECT toString(event_id) AS event_id, toString(play_id) AS play_id, toString(user_id) AS user_id,
              toString(track_id) AS track_id, country, device_id, position_ms,
              toUnixTimestamp(event_time) AS event_time
       FROM play_ticks WHERE play_id != '${good.play_id}' ORDER BY event_id`,
    );
    const seconds = (t: PlayTick) => ({ ...t, event_time: `${t.event_time.slice(0, 19)}.000Z` });
    expect(stored.map((t) => ({ ...t, event_time: new Date(t.event_time * 1000).toISOString() }))).toEqual(
      plays
        .flat()
        .map(seconds)
        .sort((a, b) => a.event_id.localeCompare(b.event_id)),
    );

    const dlq = kafka.consumer({ groupId: `dlq-reader-${db.id}` });
    await dlq.connect();
    await dlq.subscribe({ topic: db.topics.dlq, fromBeginning: true });
    const records = await new Promise<{ reason: string; record: string }[]>((resolve) => {
      const seen: { reason: string; record: string }[] = [];
      void dlq.run({
        eachMessage: async ({ message }) => {
          seen.push(JSON.parse(message.value?.toString() ?? '{}'));
          if (seen.length === 3) resolve(seen);
        },
      });
    });
    await dlq.disconnect();
    // The records went to different partitions: their DLQ order is not defined.
    const byReason = (pattern: RegExp) => records.find((r) => pattern.test(r.reason));
    expect(byReason(/^not JSON$/)).toMatchObject({ record: '{"event_id": oops' });
    const badTick = byReason(/^tick 1: .*position_ms/);
    expect(JSON.parse(badTick?.record ?? '{}')).toEqual(bad);
    expect(byReason(/^row 1: position_ms/)).toMatchObject({
      record: damaged.toString('base64'),
      encoding: 'base64',
    });

    const metrics = await registry.getMetricsAsJSON();
    const value = (name: string) =>
      metrics.find((m) => m.name === name)?.values.reduce((s, v) => s + v.value, 0);
    expect(value('cadenza_sink_suppressed_total')).toBe(suppressed.length);
    expect(value('cadenza_sink_dlq_total')).toBe(3);

    // The group's committed offsets reach the end of every partition: a restarted sink goes on from
    // there instead of reading the topic again.
    const admin = kafka.admin();
    await admin.connect();
    try {
      const ends = await admin.fetchTopicOffsets(db.topics.ticks);
      const [committed] = await admin.fetchOffsets({
        groupId: `sink-it-${db.id}`,
        topics: [db.topics.ticks],
      });
      const byPartition = new Map(committed?.partitions.map((p) => [p.partition, p.offset]));
      expect(ends.map((e) => [e.partition, byPartition.get(e.partition)])).toEqual(
        ends.map((e) => [e.partition, e.high]),
      );
    } finally {
      await admin.disconnect();
    }
  }, 120_000);
});
