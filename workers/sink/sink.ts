import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { idempotentProducer } from '../../lib/clients/kafka';
import { TOPICS } from '../../lib/migrate/kafka';
import { tickProblem, type PlayTick } from '../../lib/play-ticks';
import { TICK_COLUMNS, TsvRows } from '../../lib/seed/load';
import type { SuppressionList } from './suppressions';

export interface SinkOptions {
  groupId: string;
  /** Fetch waits until this many bytes are ready, or maxWaitMs passed: batching by size and time. */
  minBatchBytes: number;
  maxWaitMs: number;
  partitionsConcurrently: number;
  /** The topics read and written (tests use their own). */
  topics?: { ticks: string; dlq: string };
}

/**
 * Kafka → ClickHouse. Offsets are committed only after the batch's rows are in ClickHouse (and its
 * rejects in the DLQ), so a crash re-delivers and never loses; re-delivered ticks collapse in
 * ClickHouse by event_id. A failing insert is retried with backoff while the consumer heartbeats.
 */
export class PlayTickSink {
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private readonly rows: Counter;
  private readonly dlq: Counter;
  private readonly suppressed: Counter;
  private readonly batchSeconds: Histogram;
  private readonly lag: Gauge;

  constructor(
    private readonly kafka: Kafka,
    private readonly clickhouse: ClickHouseClient,
    private readonly suppressions: SuppressionList,
    private readonly log: Logger,
    private readonly opts: SinkOptions,
    registry: Registry,
  ) {
    const registers = [registry];
    this.rows = new Counter({
      name: 'cadenza_sink_rows_total',
      help: 'play-ticks inserted into ClickHouse',
      registers,
    });
    this.dlq = new Counter({
      name: 'cadenza_sink_dlq_total',
      help: 'records sent to the DLQ',
      labelNames: ['reason'],
      registers,
    });
    this.suppressed = new Counter({
      name: 'cadenza_sink_suppressed_total',
      help: 'ticks dropped for suppressed users',
      registers,
    });
    this.batchSeconds = new Histogram({
      name: 'cadenza_sink_batch_seconds',
      help: 'time to insert one batch',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers,
    });
    this.lag = new Gauge({
      name: 'cadenza_sink_consumer_lag',
      help: 'messages behind the high watermark, per partition',
      labelNames: ['partition'],
      registers,
    });
  }

  private get topics() {
    return this.opts.topics ?? { ticks: TOPICS.playTicks.topic, dlq: TOPICS.playTicksDlq.topic };
  }

  async start(): Promise<void> {
    this.producer = idempotentProducer(this.kafka);
    await this.producer.connect();
    this.consumer = this.kafka.consumer({
      groupId: this.opts.groupId,
      minBytes: this.opts.minBatchBytes,
      maxWaitTimeInMs: this.opts.maxWaitMs,
      maxBytesPerPartition: 16 * 1024 * 1024,
      sessionTimeout: 30_000,
      heartbeatInterval: 3000,
    });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topics.ticks, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.partitionsConcurrently,
      eachBatch: (payload) => this.handle(payload),
    });
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    await this.producer?.disconnect();
  }

  private async handle({
    batch,
    resolveOffset,
    heartbeat,
    commitOffsetsIfNecessary,
    isRunning,
    isStale,
  }: EachBatchPayload): Promise<void> {
    if (!batch.messages.length) return;
    const started = performance.now();
    const rows = new TsvRows();
    const rejects: { key: string | null; value: string }[] = [];
    let suppressed = 0;
    const reject = (reason: string, offset: string, key: string | null, record: string, where = '') => {
      this.dlq.inc({ reason: reason.split(' ').slice(0, 2).join(' ') });
      rejects.push({
        key,
        value: JSON.stringify({
          reason: `${where}${reason}`,
          topic: batch.topic,
          partition: batch.partition,
          offset,
          record: record.slice(0, 10_000),
        }),
      });
    };
    for (const m of batch.messages) {
      const raw = m.value?.toString('utf8') ?? '';
      const key = m.key?.toString('utf8') ?? null;
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        reject('not JSON', m.offset, key, raw);
        continue;
      }
      // A record is one tick, or (from the API's producer) an array of ticks of one partition.
      const ticks = Array.isArray(parsed) ? parsed : [parsed];
      if (!ticks.length) reject('an empty array of ticks', m.offset, key, raw);
      for (const [index, value] of ticks.entries()) {
        const reason = tickProblem(value, null);
        if (reason) {
          const where = Array.isArray(parsed) ? `tick ${index}: ` : '';
          reject(reason, m.offset, key, Array.isArray(parsed) ? JSON.stringify(value) : raw, where);
          continue;
        }
        const t = value as PlayTick;
        if (this.suppressions.has(t.user_id.toLowerCase())) {
          suppressed++;
          continue;
        }
        rows.add(t);
      }
    }
    if (rows.count) await this.insertWithRetry(rows.bytes(), heartbeat, () => isRunning() && !isStale());
    if (!isRunning() || isStale()) return; // a rebalance took the partition: the new owner re-reads from the last commit
    if (rejects.length) await this.producer!.send({ topic: this.topics.dlq, acks: -1, messages: rejects });
    this.rows.inc(rows.count);
    this.suppressed.inc(suppressed);
    resolveOffset(batch.lastOffset());
    await commitOffsetsIfNecessary();
    this.lag.set({ partition: String(batch.partition) }, Number(batch.offsetLag()));
    this.batchSeconds.observe((performance.now() - started) / 1000);
  }

  private async insertWithRetry(
    rows: Buffer,
    heartbeat: () => Promise<void>,
    stillOwned: () => boolean,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.clickhouse.insert({
          table: 'play_ticks',
          values: Readable.from([rows], { objectMode: false }),
          format: 'TabSeparated',
          columns: TICK_COLUMNS,
        });
        return;
      } catch (err) {
        if (!stillOwned()) return;
        // Back off up to 5 s, heartbeating every second so the group keeps this member (and its partitions).
        const delay = Math.min(5000, 250 * 2 ** Math.min(attempt, 5));
        this.log.warn(
          { err: (err as Error).message, attempt, delayMs: delay },
          'ClickHouse insert failed; retrying',
        );
        for (let waited = 0; waited < delay; waited += 1000) {
          await new Promise((r) => setTimeout(r, Math.min(1000, delay - waited)));
          await heartbeat().catch(() => undefined);
          if (!stillOwned()) return;
        }
      }
    }
  }
}
