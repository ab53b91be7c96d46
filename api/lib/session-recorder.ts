import { Counter, type Registry } from 'prom-client';
import { sql, type DatabasePool } from 'slonik';
import type { PlayTick } from '../../domain/play-ticks/ticks';

/**
 * Listening sessions for session_logs (account-sharing detection, query 2A), recorded off the request path:
 * a request only notes (user, device, country) in memory; at most once per window per triple a row is queued,
 * and a timer writes the queue in one statement every few seconds. At 100k ticks/s that is a map lookup per
 * distinct (user, device) in a request, not a row per tick.
 *
 * The country is the client's, from a header a trusted edge (CDN, load balancer) sets from the IP — there is
 * no GeoIP database here — and the user's own country when the header is absent or not a known country.
 * Sessions of unknown or erased users are not written. A batch that cannot be written is dropped and
 * counted: sessions are evidence for a heuristic, never worth holding up the ticks.
 */

export interface SessionRecorderOptions {
  windowMinutes: number;
  flushMs?: number;
  /** Rows waiting for the next write at most; beyond it sessions are dropped (and counted). */
  maxPending?: number;
}

interface Pending {
  at: number;
  userId: string;
  deviceId: string;
  country: string | null;
}

const COUNTRY = /^[A-Za-z]{2}$/;
/** A header value as a country code, or null (absent, a list, or not two letters). */
export function countryOf(header: string | string[] | undefined): string | null {
  return typeof header === 'string' && COUNTRY.test(header) ? header.toUpperCase() : null;
}

export class SessionRecorder {
  private readonly last = new Map<string, number>();
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private prunedAt = 0;
  private readonly windowMs: number;
  private readonly maxPending: number;
  private recorded?: Counter;
  private dropped?: Counter;

  constructor(
    private readonly pool: DatabasePool,
    private readonly opts: SessionRecorderOptions,
    private readonly log?: { warn: (o: object, m: string) => void },
  ) {
    this.windowMs = opts.windowMinutes * 60_000;
    this.maxPending = opts.maxPending ?? 100_000;
  }

  /** Counts what it writes and drops in the API's registry (/metrics). */
  registerMetrics(registry: Registry): void {
    this.recorded = new Counter({
      name: 'cadenza_api_sessions_recorded_total',
      help: 'session_logs rows written',
      registers: [registry],
    });
    this.dropped = new Counter({
      name: 'cadenza_api_sessions_dropped_total',
      help: 'sessions not written (queue full, or PostgreSQL refused the batch)',
      registers: [registry],
    });
  }

  /** A session was seen now; queued unless the same one was queued within the window. */
  note(userId: string, deviceId: string, country: string | null, now = Date.now()): void {
    const key = `${userId.toLowerCase()}|${deviceId}|${country ?? ''}`;
    const seen = this.last.get(key);
    if (seen !== undefined && now - seen < this.windowMs) return;
    this.last.set(key, now);
    if (this.pending.length >= this.maxPending) {
      this.dropped?.inc();
      return;
    }
    this.pending.push({ at: now, userId, deviceId, country });
  }

  /** The sessions behind a request's accepted ticks: one note per change of user or device. */
  noteTicks(ticks: readonly PlayTick[], country: string | null, now = Date.now()): void {
    let user = '';
    let device = '';
    for (const t of ticks) {
      if (t.user_id === user && t.device_id === device) continue;
      user = t.user_id;
      device = t.device_id;
      this.note(user, device, country, now);
    }
  }

  /** Writes what is queued (one statement); forgets sessions older than the window now and then. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  private async write(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const now = Date.now();
    if (now - this.prunedAt > this.windowMs / 2) {
      this.prunedAt = now;
      for (const [key, at] of this.last) if (now - at >= this.windowMs) this.last.delete(key);
    }
    if (!batch.length) return;
    try {
      const result = await this.pool.query(sql.unsafe`
        INSERT INTO session_logs (started_at, user_id, ip_country, device_id)
        SELECT s.started_at, u.user_id, coalesce(c.code, u.country), s.device_id
        FROM unnest(
          ${sql.array(
            batch.map((b) => new Date(b.at).toISOString()),
            'timestamptz',
          )},
          ${sql.array(
            batch.map((b) => b.userId),
            'uuid',
          )},
          ${sql.array(
            batch.map((b) => b.deviceId),
            'text',
          )},
          ${sql.array(
            batch.map((b) => b.country ?? ''),
            'text',
          )}) AS s(started_at, user_id, device_id, country)
        JOIN users u ON u.user_id = s.user_id AND u.erased_at IS NULL
        LEFT JOIN countries c ON c.code = s.country`);
      this.recorded?.inc(result.rowCount);
    } catch (err) {
      this.dropped?.inc(batch.length);
      this.log?.warn({ err: (err as Error).message, sessions: batch.length }, 'session logs not written');
    }
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.opts.flushMs ?? 5000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}
