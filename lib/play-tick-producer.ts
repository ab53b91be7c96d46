import { CompressionTypes, type Kafka, type Producer } from 'kafkajs';
import { idempotentProducer } from './clients/kafka';
import { UnavailableError } from './errors';
import { TOPICS } from './migrate/kafka';
import type { PlayTick } from './play-ticks';

/**
 * Produces accepted play-ticks to Kafka and resolves only once every in-sync replica has them.
 * Keyed by play_id: a play's ticks stay in order on one partition, and load spreads evenly (a
 * user_id key would pile a heavy listener or a bot onto one partition). Gzip: ticks are repetitive JSON.
 * When Kafka does not acknowledge within the deadline, callers get UnavailableError (503), not a hang.
 */
export class PlayTickProducer {
  private readonly producer: Producer;
  private connected: Promise<void> | undefined;

  constructor(
    kafka: Kafka,
    private readonly deadlineMs = 3000,
    private readonly topic: string = TOPICS.playTicks.topic,
  ) {
    this.producer = idempotentProducer(kafka);
    this.producer.on(this.producer.events.DISCONNECT, () => {
      this.connected = undefined;
    });
  }

  private connect(): Promise<void> {
    this.connected ??= this.producer.connect().catch((err: unknown) => {
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
    try {
      await Promise.race([
        (async () => {
          await this.connect();
          await this.producer.send({
            topic: this.topic,
            acks: -1,
            compression: CompressionTypes.GZIP,
            messages: ticks.map((t) => ({ key: t.play_id, value: JSON.stringify(t) })),
          });
        })(),
        deadline,
      ]);
    } catch (err) {
      if (err instanceof UnavailableError) throw err;
      throw new UnavailableError('The event log is not reachable; retry shortly.');
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.producer.disconnect();
  }
}
