import path from 'node:path';
import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { Piscina } from 'piscina';
import { idempotentProducer } from '../../lib/clients/kafka';
import { TOPICS } from '../../lib/migrate/kafka';
import { TICK_COLUMNS } from '../../lib/seed/load';
import { convertRecords, type Converted } from './convert';
import type { SuppressionList } from './suppressions';

export interface SinkOptions {
  groupId: string;
  /** Fetch waits until this many bytes are ready, or maxWaitMs passed: batching by size and time. */
  minBatchBytes: number;
  maxWaitMs: number;
  partitionsConcurrently: number;
  /** Threads that parse and validate records (0: on the main thread). */
  threads: number;
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
  private pool: Piscina | undefined;
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
    if (this.opts.threads > 0) {
      this.pool = new Piscina({
        filename: path.join(__dirname, 'convert-thread.cjs'),
        minThreads: this.opts.threads,
        maxThreads: this.opts.threads,
      });
    }
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
    await this.pool?.destroy();
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
    const messages = batch.messages;
    const converted = await this.convert(messages.map((m) => m.value));
    const rejects = converted.flatMap(({ rejects: r, first }) =>
      r.map(({ index, reason, record }) => {
        const m = messages[first + index] as (typeof messages)[number];
        this.dlq.inc({
          reason: reason
            .replace(/^tick \d+: /, '')
            .split(' ')
            .slice(0, 2)
            .join(' '),
        });
        return {
          key: m.key?.toString('utf8') ?? null,
          value: JSON.stringify({
            reason,
            topic: batch.topic,
            partition: batch.partition,
            offset: m.offset,
            record: record.slice(0, 10_000),
          }),
        };
      }),
    );
    const count = converted.reduce((n, c) => n + c.count, 0);
    const suppressed = converted.reduce((n, c) => n + c.suppressed, 0);
    const rows = converted.filter((c) => c.count > 0).map((c) => c.tsv);
    if (count) await this.insertWithRetry(rows, heartbeat, () => isRunning() && !isStale());
    if (!isRunning() || isStale()) return; // a rebalance took the partition: the new owner re-reads from the last commit
    if (rejects.length) await this.producer!.send({ topic: this.topics.dlq, acks: -1, messages: rejects });
    this.rows.inc(count);
    this.suppressed.inc(suppressed);
    resolveOffset(batch.lastOffset());
    // Committed explicitly: with autoCommit off, the argument-less form never commits (kafkajs commits
    // then only on an autoCommit interval or threshold), and every restart would re-read the topic.
    const next = (BigInt(batch.lastOffset()) + 1n).toString();
    await commitOffsetsIfNecessary({
      topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }],
    });
    this.lag.set({ partition: String(batch.partition) }, Number(batch.offsetLag()));
    this.batchSeconds.observe((performance.now() - started) / 1000);
  }

  /**
   * Converts a batch's records to rows: split over the sink's threads (parsing and validating is most of
   * the sink's CPU, and one thread's garbage collector held it back), or inline with no threads.
   */
  private async convert(values: (Buffer | null)[]): Promise<(Converted & { first: number })[]> {
    if (!this.pool) return [{ ...convertRecords(values, (u) => this.suppressions.has(u)), first: 0 }];
    const pool = this.pool;
    const slice = Math.ceil(values.length / this.opts.threads);
    const suppressions = this.suppressions.snapshot();
    const tasks: Promise<Converted & { first: number }>[] = [];
    for (let first = 0; first < values.length; first += slice) {
      const task = pool.run({
        values: values.slice(first, first + slice),
        suppressions,
      }) as Promise<Converted>;
      tasks.push(task.then((c) => ({ ...c, first })));
    }
    return Promise.all(tasks);
  }

  private async insertWithRetry(
    rows: Uint8Array[],
    heartbeat: () => Promise<void>,
    stillOwned: () => boolean,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.clickhouse.insert({
          table: 'play_ticks',
          values: Readable.from(rows, { objectMode: false }),
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
