import { setTimeout as sleep } from 'node:timers/promises';
import { Counter, type Registry } from 'prom-client';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { DeliveryResult, Notification } from '../../lib/clients/notifications';

/**
 * The outbox relay: delivers the messages billing writes to `outbox_messages` (in the same transaction as
 * the change they announce) to the notification provider, at least once, each with its own idempotency key
 * (`outbox-<message_key>`), so the provider makes one notification however often a message is sent.
 *
 * - A batch is leased (`lease_until`), not locked: nothing is held open while the provider answers, and a
 *   relay killed mid-batch leaves messages another relay (or its restart) takes over when the lease ends.
 *   Several relays may run: SKIP LOCKED hands each its own batch.
 * - Delivered: `published_at`. A transient failure waits 2^attempt seconds (at most 10 minutes) and tries
 *   again; after `maxAttempts`, or at once when the provider rejects the message (4xx), it is dead-lettered
 *   (`dead_at`, with the last error) for a person: the metrics count them, the runbook says how to resend.
 * - The recipient's address is looked up when sending (messages carry IDs only); an erased user gets nothing.
 */

export interface RelayOptions {
  batch: number;
  concurrency: number;
  pollMs: number;
  leaseSeconds: number;
  maxAttempts: number;
}

export interface NotificationSender {
  send(n: Notification): Promise<DeliveryResult>;
}

const Claimed = z.object({
  message_id: z.number(),
  message_key: z.string(),
  user_id: z.string(),
  topic: z.string(),
  payload: z.record(z.unknown()),
  attempts: z.number(),
});
type Claimed = z.infer<typeof Claimed>;
const Recipient = z.object({
  user_id: z.string(),
  email: z.string(),
  language: z.string(),
  erased: z.boolean(),
});

const MAX_BACKOFF_SECONDS = 600;
/** Seconds before attempt `attempts + 1`: 2, 4, 8 … capped at ten minutes. */
export const backoffSeconds = (attempts: number) => Math.min(2 ** Math.max(1, attempts), MAX_BACKOFF_SECONDS);
export const idempotencyKeyOf = (messageKey: string) => `outbox-${messageKey}`;

export class OutboxRelay {
  private stopping = false;
  private readonly delivered: Counter;
  private readonly failed: Counter<'reason'>;
  private readonly dead: Counter;

  constructor(
    private readonly pool: DatabasePool,
    private readonly sender: NotificationSender,
    private readonly opts: RelayOptions,
    registry: Registry,
    private readonly log: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void },
  ) {
    const registers = [registry];
    this.delivered = new Counter({
      name: 'cadenza_outbox_delivered_total',
      help: 'outbox messages the notification provider accepted',
      registers,
    });
    this.failed = new Counter({
      name: 'cadenza_outbox_failed_attempts_total',
      help: 'delivery attempts that failed, by kind (transient: retried; rejected: dead-lettered)',
      labelNames: ['reason'],
      registers,
    });
    this.dead = new Counter({
      name: 'cadenza_outbox_dead_lettered_total',
      help: 'outbox messages this relay dead-lettered',
      registers,
    });
  }

  /** Leases up to `batch` due messages; each lease counts as an attempt (a kill mid-delivery is one). */
  async claim(): Promise<readonly Claimed[]> {
    return this.pool.any(sql.type(Claimed)`
      WITH due AS (
        SELECT message_id FROM outbox_messages
        WHERE published_at IS NULL AND dead_at IS NULL AND next_attempt_at <= now()
          AND (lease_until IS NULL OR lease_until < now())
        ORDER BY next_attempt_at, message_id
        LIMIT ${this.opts.batch}
        FOR UPDATE SKIP LOCKED)
      UPDATE outbox_messages m
      SET lease_until = now() + make_interval(secs => ${this.opts.leaseSeconds}), attempts = m.attempts + 1
      FROM due WHERE m.message_id = due.message_id
      RETURNING m.message_id, m.message_key, m.user_id::text AS user_id, m.topic, m.payload, m.attempts`);
  }

  /** One batch: claim, send (a few at a time), settle each. Returns how many messages it handled. */
  async relayOnce(): Promise<number> {
    const claimed = await this.claim();
    if (!claimed.length) return 0;
    const recipients = new Map(
      (
        await this.pool.any(sql.type(Recipient)`
          SELECT user_id::text AS user_id, email, language, erased_at IS NOT NULL AS erased FROM users
          WHERE user_id = ANY(${sql.array(
            claimed.map((m) => m.user_id),
            'uuid',
          )})`)
      ).map((r) => [r.user_id, r]),
    );
    let next = 0;
    const delivered: number[] = [];
    const lane = async () => {
      while (next < claimed.length) {
        const m = claimed[next++] as Claimed;
        const to = recipients.get(m.user_id);
        if (!to || to.erased) {
          await this.deadLetter(m, to ? 'the recipient was erased' : 'no such recipient');
          continue;
        }
        const result = await this.sender.send({
          idempotencyKey: idempotencyKeyOf(m.message_key),
          topic: m.topic,
          recipient: { userId: m.user_id, email: to.email, language: to.language },
          data: m.payload,
        });
        if (result.outcome === 'delivered') delivered.push(m.message_id);
        else await this.settle(m, result);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, claimed.length) }, lane));
    } finally {
      // The batch's deliveries in one statement: a relay killed before it resends them, and the provider's
      // idempotency key makes that resend a no-op.
      if (delivered.length) {
        await this.pool.query(sql.unsafe`
          UPDATE outbox_messages SET published_at = now(), lease_until = NULL, last_error = NULL
          WHERE message_id = ANY(${sql.array(delivered, 'int8')}) AND published_at IS NULL`);
        this.delivered.inc(delivered.length);
      }
    }
    return claimed.length;
  }

  private async settle(m: Claimed, result: Exclude<DeliveryResult, { outcome: 'delivered' }>): Promise<void> {
    this.failed.inc({ reason: result.outcome });
    if (result.outcome === 'rejected' || m.attempts >= this.opts.maxAttempts) {
      await this.deadLetter(m, result.reason);
      return;
    }
    await this.pool.query(sql.unsafe`
      UPDATE outbox_messages
      SET next_attempt_at = now() + make_interval(secs => ${backoffSeconds(m.attempts)}), lease_until = NULL,
          last_error = ${result.reason.slice(0, 1000)}
      WHERE message_id = ${m.message_id} AND published_at IS NULL`);
  }

  private async deadLetter(m: Claimed, reason: string): Promise<void> {
    await this.pool.query(sql.unsafe`
      UPDATE outbox_messages SET dead_at = now(), lease_until = NULL, last_error = ${reason.slice(0, 1000)}
      WHERE message_id = ${m.message_id} AND published_at IS NULL AND dead_at IS NULL`);
    this.dead.inc();
    this.log.warn(
      { messageId: m.message_id, topic: m.topic, attempts: m.attempts, reason },
      'outbox message dead-lettered',
    );
  }

  /** Relays until stopped: full batches back to back, a pause of `pollMs` when there is nothing due. */
  async run(): Promise<void> {
    while (!this.stopping) {
      let handled = 0;
      try {
        handled = await this.relayOnce();
      } catch (err) {
        // PostgreSQL away: leased messages come back when their lease ends; try again shortly.
        this.log.warn({ err: (err as Error).message }, 'outbox relay batch failed');
      }
      if (handled < this.opts.batch) await sleep(this.opts.pollMs);
    }
  }

  stop(): void {
    this.stopping = true;
  }
}
