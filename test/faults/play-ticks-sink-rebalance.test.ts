import type { ClickHouseClient } from '@clickhouse/client';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { DatabasePool } from 'slonik';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { createPostgresPool } from '../../lib/clients/postgres';
import { PlayTickProducer } from '../../api/lib/play-tick-producer';
import { PlayTickSink } from '../../workers/sink/sink';
import { SuppressionList } from '../../workers/sink/suppressions';
import { distinctTicks, scratchTickPipeline, type TickPipeline } from '../helpers/tick-pipeline';
import { aTick } from '../helpers/ticks';

/**
 * Rebalances and a graceful stop while ticks flow, with inserts still running when partitions move: a
 * second sink joins the group mid-flow, then the first stops gracefully. Every tick lands (duplicates
 * collapse by event_id) and the group's committed offsets reach the end of every partition.
 */
const TICKS = 300_000;
const PER_PUBLISH = 5000;

describe('sink rebalances and graceful stop', () => {
  let db: TickPipeline;
  let ch: ClickHouseClient;
  let pool: DatabasePool;
  let suppressions: SuppressionList;
  const sinks: PlayTickSink[] = [];

  beforeAll(async () => {
    db = await scratchTickPipeline('rebalance', 6);
    ch = createClickHouse(db.config.clickhouse);
    pool = await createPostgresPool(db.config.postgres, 2);
    suppressions = new SuppressionList(pool);
    await suppressions.refresh();
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(sinks.map((s) => s.stop()));
    await ch?.close();
    await pool?.end();
    await db?.drop();
  });

  const startSink = async (): Promise<Registry> => {
    const registry = new Registry();
    const sink = new PlayTickSink(
      db.kafka,
      ch,
      suppressions,
      pino({ level: 'silent' }),
      {
        groupId: `sink-rebalance-${db.id}`,
        minBatchBytes: 1,
        maxWaitMs: 50,
        partitionsConcurrently: 3,
        threads: 0,
        insertsInFlight: 3, // several batches unfinished when the partitions move
        insertIntervalMs: 200, // rows wait for the next insert when the partitions move
        topics: db.topics,
      },
      registry,
    );
    sinks.push(sink);
    await sink.start();
    return registry;
  };
  const rows = async (registry: Registry) =>
    (await registry.getSingleMetric('cadenza_sink_rows_total')?.get())?.values[0]?.value ?? 0;
  const distinct = () => distinctTicks(ch);
  async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
      if (await ok()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it('loses nothing when a sink joins mid-flow and another stops gracefully with inserts in flight', async () => {
    const producer = new PlayTickProducer(db.kafka, db.topics.ticks, 30_000);
    let published = 0;
    const producing = (async () => {
      for (let i = 0; i < TICKS; i += PER_PUBLISH) {
        await producer.publish(Array.from({ length: PER_PUBLISH }, () => aTick()));
        published += PER_PUBLISH;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const first = await startSink();
    await until('the first sink to insert', async () => (await rows(first)) > 0);
    const second = await startSink(); // the group rebalances
    await until('the second sink to insert', async () => (await rows(second)) > 0);
    expect(published).toBeLessThan(TICKS); // still mid-flow
    await sinks[0]?.stop(); // graceful: its partitions move to the second sink
    const firstRows = await rows(first);
    await producing;
    await producer.close();

    await until('every tick in ClickHouse', async () => (await distinct()) === TICKS);
    expect(firstRows).toBeGreaterThan(0);
    const admin = db.kafka.admin();
    await admin.connect();
    try {
      const ends = await admin.fetchTopicOffsets(db.topics.ticks);
      await until('the commits to reach the end of every partition', async () => {
        const [committed] = await admin.fetchOffsets({
          groupId: `sink-rebalance-${db.id}`,
          topics: [db.topics.ticks],
        });
        const at = new Map(committed?.partitions.map((p) => [p.partition, p.offset]));
        return ends.every((e) => at.get(e.partition) === e.high);
      });
    } finally {
      await admin.disconnect();
    }
    await ch.command({ query: 'OPTIMIZE TABLE play_ticks FINAL' });
    expect(
      await (await ch.query({ query: 'SELECT count() AS n FROM play_ticks', format: 'JSONEachRow' })).json(),
    ).toEqual([{ n: String(TICKS) }]);
  }, 300_000);
});
