import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { FastifyInstance } from 'fastify';
import type { Kafka } from 'kafkajs';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { createPostgresPool } from '../../lib/clients/postgres';
import type { Config } from '../../lib/config';
import { PlayTickProducer } from '../../api/lib/play-tick-producer';
import type { PlayTick } from '../../domain/play-ticks/ticks';
import { stackContext } from '../../stack/context';
import { distinctTicks, scratchTickPipeline, type TickPipeline } from '../helpers/tick-pipeline';
import { supervisorctl } from '../../stack/supervisor';
import { PlayTickSink } from '../../workers/sink/sink';
import { SuppressionList } from '../../workers/sink/suppressions';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';

/** Services of the real stack stopped mid-flow (through its supervisor), then started again. */
describe('outages', () => {
  const ctx = stackContext();
  let db: TickPipeline;
  let cfg: Config;
  let kafka: Kafka;
  let ch: ClickHouseClient;
  let producer: PlayTickProducer;
  let app: FastifyInstance;
  let token: string;

  beforeAll(async () => {
    db = await scratchTickPipeline('outage', 3);
    kafka = db.kafka;
    ch = createClickHouse(db.config.clickhouse);
    producer = new PlayTickProducer(kafka, db.topics.ticks, 3000);
    cfg = withTempIssuer(db.config);
    app = await testApp(cfg, { publisher: producer });
    token = await tokenFor(cfg, 'svc-outage', ['service']);
  }, 120_000);

  afterAll(async () => {
    // Whatever happened, leave the stack running.
    await supervisorctl(ctx, 'start', 'kafka', 'clickhouse').catch(() => undefined);
    await producer?.close();
    await app?.close();
    await ch?.close();
    await db?.drop();
  });

  const ticks = (n: number): PlayTick[] => {
    const play = randomUUID();
    return Array.from({ length: n }, (_, k) => ({
      event_id: randomUUID(),
      play_id: play,
      user_id: randomUUID(),
      track_id: randomUUID(),
      country: 'FR',
      device_id: 'tv-1',
      position_ms: (k + 1) * 5000,
      event_time: new Date(Date.now() - (n - k) * 5000).toISOString(),
    }));
  };
  const post = (t: PlayTick[]) =>
    app.inject({ method: 'POST', url: '/v1/play-ticks', headers: bearer(token), payload: { ticks: t } });
  async function until<T>(
    what: string,
    probe: () => Promise<T | undefined>,
    timeoutMs = 120_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const v = await probe().catch(() => undefined);
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it('ClickHouse down for 30 s mid-flow: the sink backs off, catches up, and loses nothing', async () => {
    const pool = await createPostgresPool(db.config.postgres, 1);
    const suppressions = new SuppressionList(pool);
    await suppressions.refresh();
    const sink = new PlayTickSink(
      kafka,
      ch,
      suppressions,
      pino({ level: process.env.CADENZA_FAULT_DEBUG ? 'debug' : 'silent' }),
      {
        groupId: `sink-outage-${db.id}`,
        minBatchBytes: 1,
        maxWaitMs: 100,
        partitionsConcurrently: 1,
        threads: 0, // converting on the main thread: the other path of the sink
        insertsInFlight: 1,
        insertIntervalMs: 0,
        topics: db.topics,
      },
      new Registry(),
    );
    await sink.start();
    try {
      const sent: PlayTick[] = [];
      const send = async (n: number) => {
        const batch = ticks(n);
        const res = await post(batch);
        expect(res.statusCode).toBe(202);
        expect(res.json()).toEqual({ accepted: n, rejected: [] });
        sent.push(...batch);
      };
      await send(200);
      await supervisorctl(ctx, 'stop', 'clickhouse');
      const downUntil = Date.now() + Number(process.env.CADENZA_OUTAGE_MS ?? 30_000);
      while (Date.now() < downUntil) {
        await send(100);
        await new Promise((r) => setTimeout(r, 1000));
      }
      await supervisorctl(ctx, 'start', 'clickhouse');
      await send(200);
      await until('every tick in ClickHouse', async () => {
        const n = await distinctTicks(ch);
        if (process.env.CADENZA_FAULT_DEBUG) process.stderr.write(`in ClickHouse ${n} of ${sent.length}\n`);
        return n === sent.length ? true : undefined;
      });
    } finally {
      await sink.stop();
      await pool.end();
    }
  }, 240_000);

  it('Kafka down: the API answers 503 problem+json instead of hanging, and recovers by itself', async () => {
    expect((await post(ticks(5))).statusCode).toBe(202);
    await supervisorctl(ctx, 'stop', 'kafka');
    try {
      const res = await post(ticks(5));
      expect(res.statusCode).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json().type).toBe('urn:cadenza:problem:unavailable');
    } finally {
      await supervisorctl(ctx, 'start', 'kafka');
    }
    await until('the API accepting ticks again', async () =>
      (await post(ticks(5))).statusCode === 202 ? true : undefined,
    );
  }, 240_000);
});
