import path from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { Piscina } from 'piscina';
import { idempotentProducer } from '../../lib/clients/kafka';
import { ROW_COLUMNS } from '../../domain/play-ticks/rows';
import { convertRecords, type Converted } from './convert';
import type { SuppressionList } from './suppressions';

/**
 * Rows read but not yet in ClickHouse, at most (beyond this the sink stops fetching until inserts finish).
 * It must hold the rows of the inserts running and of the next: at 64 MB (about 800k rows) the fetches
 * waited on the inserts and the sink and ClickHouse took turns, draining 0.85–0.96M rows/s; at 256 MB,
 * 1.28–1.42M (bench:play-ticks --sink-only, docs/BENCHMARKS.md).
 */
const MAX_UNFINISHED_BYTES = 256 * 1024 * 1024;
/**
 * A fetch's bytes per partition, at most: measured, 8 MB drained 1.40–1.42M rows/s, 16 MB 1.28–1.33M and
 * 4 MB 1.33–1.38M. Smaller responses reach the sink sooner, so its batches overlap the inserts more.
 */
const FETCH_BYTES_PER_PARTITION = 8 * 1024 * 1024;
/** A graceful stop waits this long for unfinished batches before leaving them to be read again. */
const STOP_DRAIN_MS = 15_000;

interface Resolvers {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}
function withResolvers(): Resolvers {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export interface SinkOptions {
  groupId: string;
  /** Fetch waits until this many bytes are ready, or maxWaitMs passed: batching by size and time. */
  minBatchBytes: number;
  maxWaitMs: number;
  partitionsConcurrently: number;
  /** Threads that parse and validate records (0: on the main thread). */
  threads: number;
  /** Inserts into ClickHouse running at once (≥ 1); rows arriving meanwhile wait and go in the next. */
  insertsInFlight: number;
  /** Least time between the starts of two inserts (0: none); rows arriving meanwhile go in the next. */
  insertIntervalMs: number;
  /** The topics read and written (config.kafka.topics; tests use their own). */
  topics: { ticks: string; dlq: string };
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
  /** Unfinished batches (insert, DLQ, commit), for backpressure and a graceful stop. */
  private readonly inFlight = new Set<Promise<void>>();
  /** Per partition: the last batch's completion (commits go in offset order) and a restart counter. */
  private readonly chains = new Map<string, { tail: Promise<void>; epoch: number }>();
  private draining = false;
  /** Stopping took too long (ClickHouse down): retries give up, and nothing more is committed. */
  private abandoned = false;
  private unfinishedBytes = 0;
  /** Rows waiting for the next insert, and how many inserts are running. */
  private next: ({ rows: Uint8Array[]; bytes: number } & Resolvers) | undefined;
  private inserting = 0;
  private lastInsertAt = -Infinity;
  private pumpTimer: NodeJS.Timeout | undefined;
  private heartbeat: () => Promise<void> = async () => undefined;
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
    return this.opts.topics;
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
      maxBytesPerPartition: FETCH_BYTES_PER_PARTITION,
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

  /**
   * Graceful stop: no new fetches, every batch in hand inserted and committed while still a group member,
   * then leave the group (its partitions move to the other members at once).
   */
  async stop(): Promise<void> {
    this.draining = true;
    clearTimeout(this.pumpTimer);
    this.pumpTimer = undefined;
    this.pump(); // rows waiting for the insert interval go now
    if (this.consumer) {
      this.consumer.pause([{ topic: this.topics.ticks }]);
      const drained = Promise.allSettled([...this.inFlight]);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), STOP_DRAIN_MS)));
      if ((await Promise.race([drained, late])) === 'late') {
        // ClickHouse is not taking the rows: leave them uncommitted, for whoever reads the partitions next.
        this.log.warn({ batches: this.inFlight.size }, 'stopping without the unfinished batches');
        this.abandoned = true;
        await drained;
      }
      clearTimeout(timer);
      await this.consumer.disconnect();
    }
    await this.producer?.disconnect();
    await this.pool?.destroy();
  }

  /**
   * One fetched batch: converted at once, then its insert (and DLQ records) run while the next batch is
   * fetched and converted — kafkajs fetches again only when every batch of the last fetch returned, so
   * an insert awaited here would leave the sink and ClickHouse taking turns. The batch's offset is
   * resolved at once (the fetch position moves on) but committed only after its rows are in ClickHouse
   * and every earlier batch of its partition is committed: a crash re-delivers, never loses. When more
   * than MAX_UNFINISHED_BYTES of rows are not yet in ClickHouse, this waits (backpressure, bounded memory).
   */
  private async handle({
    batch,
    resolveOffset,
    heartbeat,
    commitOffsetsIfNecessary,
    isRunning,
    isStale,
  }: EachBatchPayload): Promise<void> {
    if (!batch.messages.length || isStale()) return;
    const started = performance.now();
    const messages = batch.messages;
    const converted = await this.convert(messages.map((m) => m.value));
    const rejects = converted.flatMap(({ rejects: r, first }) =>
      r.map(({ index, reason, record, encoding }) => {
        const m = messages[first + index] as (typeof messages)[number];
        return {
          metric: reason
            .replace(/^(tick|row) \d+: /, '')
            .split(' ')
            .slice(0, 2)
            .join(' '),
          message: {
            key: m.key?.toString('utf8') ?? null,
            value: JSON.stringify({
              reason,
              topic: batch.topic,
              partition: batch.partition,
              offset: m.offset,
              record: record.slice(0, 10_000),
              ...(encoding ? { encoding } : {}),
            }),
          },
        };
      }),
    );
    const count = converted.reduce((n, c) => n + c.count, 0);
    const suppressed = converted.reduce((n, c) => n + c.suppressed, 0);
    const rows = converted.flatMap((c) => c.rows);
    const stillOwned = () => isRunning() && !isStale();

    const key = `${batch.topic}|${batch.partition}`;
    let chain = this.chains.get(key);
    if (!chain) this.chains.set(key, (chain = { tail: Promise.resolve(), epoch: 0 }));
    const { epoch } = chain;
    const first = (messages[0] as (typeof messages)[number]).offset;
    const next = (BigInt(batch.lastOffset()) + 1n).toString();
    const bytes = rows.reduce((n, r) => n + r.byteLength, 0);
    const written = (async () => {
      if (count) await this.insert(rows, bytes, heartbeat);
      if (rejects.length)
        await this.producer!.send({
          topic: this.topics.dlq,
          acks: -1,
          messages: rejects.map((r) => r.message),
        });
    })();
    const link = chain;
    const done = link.tail
      .then(() => written)
      .then(async () => {
        // Re-read from an earlier offset, no longer ours, or given up on while stopping: not committed.
        if (link.epoch !== epoch || !stillOwned() || this.abandoned) return;
        // Committed explicitly: with autoCommit off, the argument-less form never commits.
        await commitOffsetsIfNecessary({
          topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }],
        });
        this.rows.inc(count);
        this.suppressed.inc(suppressed);
        for (const r of rejects) this.dlq.inc({ reason: r.metric });
        this.batchSeconds.observe((performance.now() - started) / 1000);
      })
      .catch((err: unknown) => {
        // Nothing of this batch or after it on this partition counts as done: read it all again.
        if (link.epoch !== epoch) return;
        link.epoch++;
        this.log.warn(
          { err: (err as Error).message, partition: batch.partition, offset: first },
          'batch not written; reading the partition again from it',
        );
        if (stillOwned())
          this.consumer?.seek({ topic: batch.topic, partition: batch.partition, offset: first });
      });
    link.tail = done;
    this.inFlight.add(done);
    this.unfinishedBytes += bytes;
    void done.finally(() => {
      this.inFlight.delete(done);
      this.unfinishedBytes -= bytes;
    });
    resolveOffset(batch.lastOffset());
    this.lag.set({ partition: String(batch.partition) }, Number(batch.offsetLag()));
    if (this.draining) await done;
    while (this.unfinishedBytes > MAX_UNFINISHED_BYTES) await Promise.race(this.inFlight);
  }

  /**
   * Rows join the next insert, which starts once fewer than `insertsInFlight` inserts are running and
   * `insertIntervalMs` has passed since the last one started: the rows of every partition that arrived
   * meanwhile go to ClickHouse together. Few large inserts, not one per partition batch: each insert is a
   * new part in the table and in each rollup, and merging many small parts was most of ClickHouse's CPU
   * under load. When ClickHouse is the slower, inserts grow instead of queueing.
   */
  private insert(rows: Uint8Array[], bytes: number, heartbeat: () => Promise<void>): Promise<void> {
    const next = (this.next ??= { rows: [], bytes: 0, ...withResolvers() });
    next.rows.push(...rows);
    next.bytes += bytes;
    this.heartbeat = heartbeat;
    this.pump();
    return next.promise;
  }

  private pump(): void {
    while (this.next && this.inserting < this.opts.insertsInFlight) {
      // Inserts start at most once per insertIntervalMs: the rows meanwhile join the same insert.
      const wait = this.lastInsertAt + this.opts.insertIntervalMs - performance.now();
      if (wait > 0 && !this.draining) {
        this.pumpTimer ??= setTimeout(() => {
          this.pumpTimer = undefined;
          this.pump();
        }, wait);
        return;
      }
      this.lastInsertAt = performance.now();
      const group = this.next;
      this.next = undefined;
      this.inserting++;
      this.insertWithRetry(group.rows)
        .then(group.resolve, group.reject)
        .finally(() => {
          this.inserting--;
          this.pump();
        });
    }
  }

  /**
   * Converts a batch's records to rows: split over the sink's threads (parsing and validating is most of
   * the sink's CPU, and one thread's garbage collector held it back), or inline with no threads.
   */
  private async convert(values: (Buffer | null)[]): Promise<(Converted & { first: number })[]> {
    if (!this.pool) return [{ ...convertRecords(values, this.suppressions.lookup()), first: 0 }];
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

  /** Retries with backoff until the insert succeeds, or throws once the sink gives up (stopping). */
  private async insertWithRetry(rows: Uint8Array[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        // RowBinary is not among the client's insert formats; exec streams the body as given.
        const { stream } = await this.clickhouse.exec({
          query: `INSERT INTO play_ticks (${ROW_COLUMNS.join(', ')}) FORMAT RowBinary`,
          values: Readable.from(rows, { objectMode: false }),
        });
        stream.resume();
        await finished(stream);
        return;
      } catch (err) {
        if (this.abandoned) throw err;
        // Back off up to 5 s, heartbeating every second so the group keeps this member (and its partitions).
        const delay = Math.min(5000, 250 * 2 ** Math.min(attempt, 5));
        this.log.warn(
          { err: (err as Error).message, attempt, delayMs: delay },
          'ClickHouse insert failed; retrying',
        );
        for (let waited = 0; waited < delay; waited += 1000) {
          await new Promise((r) => setTimeout(r, Math.min(1000, delay - waited)));
          await this.heartbeat().catch(() => undefined);
          if (this.abandoned) throw err;
        }
      }
    }
  }
}
