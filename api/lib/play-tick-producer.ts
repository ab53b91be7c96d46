import { CompressionTypes, type Kafka, type Message, type Producer } from 'kafkajs';
import { idempotentProducer } from '../../lib/clients/kafka';
import { UnavailableError } from '../../lib/errors';
import type { PlayTick } from '../../domain/play-ticks/ticks';
import { TickRows } from '../../domain/play-ticks/rows';

/** Most ticks in one Kafka record (about 100 B each as rows: well under the 1 MB record limit). */
const MAX_TICKS_PER_RECORD = 2000;

/**
 * Produces accepted play-ticks to Kafka and resolves only once every in-sync replica has them
 * (idempotent producer, acks=all, LZ4). When Kafka does not acknowledge within the deadline, callers get
 * UnavailableError (503), not a hang.
 *
 * Throughput: an idempotent kafkajs producer has one request in flight at a time, so concurrent
 * publish() calls linger while a send is in flight and then go out together in the next one (like
 * librdkafka's linger.ms), and ticks travel as ClickHouse rows (`CTR1` records, lib/play-tick-rows.ts) —
 * one record per partition per send, not one per tick: the per-record cost of encoding and decoding is
 * what limits a JavaScript client, and rows let the sink insert without parsing JSON again.
 *
 * Partitioning: by play_id (a stable hash, modulo the topic's partitions). A play's ticks stay in order on
 * one partition, and load spreads evenly — a user_id key would pile a heavy listener or a bot onto one
 * partition. The record key is the first tick's play_id, for tools that show keys.
 */
export class PlayTickProducer {
  private readonly producer: Producer;
  private connected: Promise<number> | undefined;
  private pending: { ticks: readonly PlayTick[]; done: (err?: unknown) => void }[] = [];
  private sending = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    private readonly deadlineMs = 3000,
  ) {
    this.producer = idempotentProducer(kafka);
    this.producer.on(this.producer.events.DISCONNECT, () => {
      this.connected = undefined;
    });
  }

  /** Connects, and learns how many partitions the topic has. */
  private connect(): Promise<number> {
    this.connected ??= (async () => {
      await this.producer.connect();
      const admin = this.kafka.admin();
      await admin.connect();
      try {
        const meta = await admin.fetchTopicMetadata({ topics: [this.topic] });
        return Math.max(1, meta.topics[0]?.partitions.length ?? 1);
      } finally {
        await admin.disconnect();
      }
    })().catch((err: unknown) => {
      this.connected = undefined;
      throw err;
    });
    return this.connected;
  }

  async publish(ticks: readonly PlayTick[]): Promise<void> {
    if (!ticks.length) return;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new UnavailableError('The event log did not acknowledge the ticks in time; retry shortly.')),
        this.deadlineMs,
      );
    });
    const acknowledged = new Promise<void>((resolve, reject) => {
      this.pending.push({ ticks, done: (err) => (err ? reject(err) : resolve()) });
      void this.drain();
    });
    try {
      await Promise.race([acknowledged, deadline]);
    } catch (err) {
      if (err instanceof UnavailableError) throw err;
      throw new UnavailableError('The event log is not reachable; retry shortly.');
    } finally {
      clearTimeout(timer);
    }
  }

  /** One send at a time; whatever arrived meanwhile goes out together in the next. */
  private async drain(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.pending.length) {
        const batch = this.pending;
        this.pending = [];
        try {
          const partitions = await this.connect();
          await this.producer.send({
            topic: this.topic,
            acks: -1,
            compression: CompressionTypes.LZ4,
            messages: records(
              batch.flatMap((b) => b.ticks),
              partitions,
            ),
          });
          for (const b of batch) b.done();
        } catch (err) {
          for (const b of batch) b.done(err);
        }
      }
    } finally {
      this.sending = false;
    }
  }

  async close(): Promise<void> {
    await this.producer.disconnect();
  }
}

/**
 * FNV-1a over the UUID's lower-case spelling: stable across processes and releases, and the same for
 * any spelling of one play, so a play always lands on the same partition. (For a UUID's characters —
 * digits, a–f, A–F and '-' — setting bit 0x20 is lower-casing.)
 */
function hash(uuid: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < uuid.length; i++) h = Math.imul(h ^ (uuid.charCodeAt(i) | 0x20), 0x01000193);
  return h >>> 0;
}

/** Ticks grouped by partition, in arrival order, as `CTR1` row records (lib/play-tick-rows.ts). */
export function records(ticks: readonly PlayTick[], partitions: number): Message[] {
  const out: Message[] = [];
  const open = new Map<number, { rows: TickRows; key: string }>();
  const close = (partition: number, r: { rows: TickRows; key: string }) =>
    out.push({ partition, key: r.key, value: r.rows.bytes() });
  for (const t of ticks) {
    const partition = hash(t.play_id) % partitions;
    let r = open.get(partition);
    if (!r)
      open.set(
        partition,
        (r = { rows: new TickRows(Math.min(ticks.length, MAX_TICKS_PER_RECORD)), key: t.play_id }),
      );
    r.rows.add(t);
    if (r.rows.count === MAX_TICKS_PER_RECORD) {
      close(partition, r);
      open.delete(partition);
    }
  }
  for (const [partition, r] of open) close(partition, r);
  return out;
}
