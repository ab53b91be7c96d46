import { spawn, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { FastifyInstance } from 'fastify';
import type { Kafka } from 'kafkajs';
import { createClickHouse } from '../../lib/clients/clickhouse';
import type { Config } from '../../lib/config';
import { runFleet } from '../../scripts/load/fleet';
import { PlayTickProducer } from '../../api/lib/play-tick-producer';
import { distinctTicks, scratchTickPipeline, type TickPipeline } from '../helpers/tick-pipeline';
import { testApp, tokenFor, withTempIssuer } from '../helpers/api';

/**
 * kill -9 the sink again and again while play-ticks flow through the API: afterwards the distinct
 * event_ids in ClickHouse equal the ticks the API accepted — none lost, re-deliveries collapsed.
 */
const root = path.join(__dirname, '..', '..');
const TICKS = Number(process.env.CADENZA_FAULT_TICKS ?? 1_000_000);
const KILLS = 10;

describe('sink crashes under load', () => {
  let db: TickPipeline;
  let kafka: Kafka;
  let ch: ClickHouseClient;
  let app: FastifyInstance;
  let producer: PlayTickProducer;
  let sink: ChildProcess | undefined;
  let issuerConfig: Config;

  const startSink = (): ChildProcess =>
    spawn(path.join(root, 'node_modules', '.bin', 'tsx'), [path.join(root, 'workers', 'play-tick-sink.ts')], {
      cwd: root,
      env: {
        ...process.env,
        CADENZA_PG_DATABASE: db.config.postgres.database,
        CADENZA_CLICKHOUSE_DATABASE: db.config.clickhouse.database,
        CADENZA_KAFKA_TICKS_TOPIC: db.topics.ticks,
        CADENZA_KAFKA_DLQ_TOPIC: db.topics.dlq,
        CADENZA_SINK_GROUP_ID: `sink-fault-${db.id}`,
        CADENZA_SINK_HEALTH_PORT: '3913',
        CADENZA_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'ignore'],
      // Its own process group: tsx runs the sink in a child process, and kill -9 must hit both.
      detached: true,
    });

  const kill9 = async (p: ChildProcess): Promise<void> => {
    const exited =
      p.exitCode !== null || p.signalCode !== null
        ? Promise.resolve()
        : new Promise((r) => p.once('exit', r));
    try {
      process.kill(-(p.pid as number), 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
  };

  beforeAll(async () => {
    db = await scratchTickPipeline('fault', 6);
    kafka = db.kafka;
    ch = createClickHouse(db.config.clickhouse);
    producer = new PlayTickProducer(kafka, db.topics.ticks, 10_000);
    issuerConfig = withTempIssuer(db.config);
    app = await testApp(issuerConfig, { publisher: producer });
    await app.listen({ host: '127.0.0.1', port: 0 });
  }, 120_000);

  afterAll(async () => {
    if (sink) await kill9(sink);
    await producer?.close();
    await app?.close();
    await ch?.close();
    await db?.drop();
  });

  const distinct = () => distinctTicks(ch);

  it(`loses nothing and counts nothing twice across ${KILLS} kill -9s`, async () => {
    const token = await tokenFor(issuerConfig, 'svc-fault', ['service']);
    const { port } = app.server.address() as AddressInfo;
    sink = startSink();
    // About 10,000 ticks/s get through on two cores with everything else running: spread the kills over that.
    const rate = 20_000;
    const load = runFleet({
      url: `http://127.0.0.1:${port}`,
      token,
      rate,
      durationS: 900,
      maxTicks: TICKS,
      users: 20_000,
      concurrency: 6,
      collectIds: true,
    });
    const interval = (TICKS / 10_000 / (KILLS + 1)) * 1000;
    let kills = 0;
    while (kills < KILLS) {
      await new Promise((r) => setTimeout(r, interval));
      await kill9(sink);
      kills++;
      sink = startSink();
    }
    const report = await load;
    expect(report.failures).toEqual({});
    expect(report.accepted).toBe(report.sent);

    const deadline = Date.now() + 240_000;
    let seen = await distinct();
    while (seen < report.acceptedIds.size && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      seen = await distinct();
    }
    expect(kills).toBe(KILLS);
    expect(seen).toBe(report.acceptedIds.size);
    expect(report.acceptedIds.size).toBe(TICKS);
    // OPTIMIZE quietly does nothing while background merges hold the parts (1M rows in many parts after
    // ten restarts): ask it to say so, and try again until the final merge has run.
    for (let attempt = 0; ; attempt++) {
      try {
        await ch.command({
          query: 'OPTIMIZE TABLE play_ticks FINAL',
          clickhouse_settings: { optimize_throw_if_noop: 1 },
        });
        break;
      } catch (err) {
        if (attempt >= 30) throw err;
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    const [rows] = await (
      await ch.query({ query: 'SELECT count() AS n FROM play_ticks', format: 'JSONEachRow' })
    ).json<{ n: string }>();
    expect(Number(rows?.n)).toBe(report.acceptedIds.size);
  }, 600_000);
});
