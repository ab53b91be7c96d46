import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

/**
 * The two lists a GDPR erasure writes to stop a person's new data: `denied_subjects` (the API refuses
 * their tokens and their play-ticks) and `play_suppressions` (the sink drops their ticks). Each entry has a
 * version from one sequence, and writers commit in version order (they lock the table), so a follower that
 * has read version N has every entry up to N.
 *
 * A follower reads new entries every `pollMs` and reports in `list_holders` the version it holds — the
 * one everything it still has in hand was checked against (`held`), so an erasure can wait until every
 * running API and sink applies its entry. A holder silent for HOLDER_SILENT_AFTER_S is not running.
 */
export type ErasureList = 'denied_subjects' | 'play_suppressions';

/** Holders report at least this often, and one silent for longer than HOLDER_SILENT_AFTER_S is gone. */
export const HOLDER_REPORT_MS = 2000;
export const HOLDER_SILENT_AFTER_S = 10;

const Entry = z.object({ key: z.string(), version: z.number() });

const COLUMNS: Record<ErasureList, string> = {
  denied_subjects: 'subject',
  play_suppressions: 'user_id',
};

export interface FollowerOptions {
  list: ErasureList;
  /** `api`, `sink`: names the holder in list_holders. */
  role: string;
  /** How an entry's key is held (e.g. the sink's 16-byte user keys). */
  keyOf?: (key: string) => string;
  pollMs?: number;
  /** The version the holder applies to everything in hand (default: the version read). */
  held?: (loaded: number) => number;
}

export class ListFollower {
  readonly holderId: string;
  private keys = new Set<string>();
  private loaded = 0;
  private lastReported = -1;
  private lastReportAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly pool: DatabasePool,
    private readonly opts: FollowerOptions,
  ) {
    this.holderId = `${opts.role}:${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  }

  /** The version of the newest entry read. */
  get version(): number {
    return this.loaded;
  }

  get size(): number {
    return this.keys.size;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** The current keys (a new Set after every change, so a reader may keep the one it has). */
  get set(): ReadonlySet<string> {
    return this.keys;
  }

  /** Reads every entry newer than the version held; reports when the held version moved or is due. */
  async refresh(): Promise<void> {
    const column = sql.identifier([COLUMNS[this.opts.list]]);
    const table = sql.identifier([this.opts.list]);
    const rows = await this.pool.any(sql.type(Entry)`
      SELECT ${column}::text AS key, version FROM ${table}
      WHERE version > ${this.loaded} ORDER BY version`);
    if (rows.length) {
      const next = new Set(this.keys);
      const keyOf = this.opts.keyOf ?? ((k: string) => k);
      for (const r of rows) next.add(keyOf(r.key));
      this.keys = next;
      this.loaded = (rows.at(-1) as { version: number }).version;
    }
    await this.report();
  }

  /** Reports the held version when it moved, and at least every HOLDER_REPORT_MS. */
  async report(force = false): Promise<void> {
    const held = this.opts.held ? this.opts.held(this.loaded) : this.loaded;
    const due = Date.now() - this.lastReportAt >= HOLDER_REPORT_MS;
    if (!force && held === this.lastReported && !due) return;
    await this.pool.query(sql.unsafe`
      INSERT INTO list_holders (holder_id, list, version) VALUES (${this.holderId}, ${this.opts.list}, ${held})
      ON CONFLICT (holder_id, list) DO UPDATE SET version = EXCLUDED.version, reported_at = now()`);
    this.lastReported = held;
    this.lastReportAt = Date.now();
  }

  /** Loads the whole list (before serving anything), then follows it. */
  async start(): Promise<void> {
    await this.refresh();
    const tick = () => {
      if (this.stopped) return;
      this.running = this.refresh()
        .catch(() => undefined) // PostgreSQL away: keep what is held, try again (and go silent meanwhile)
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.opts.pollMs ?? 500).unref();
        });
    };
    this.timer = setTimeout(tick, this.opts.pollMs ?? 500).unref();
  }

  /** Stops following and withdraws the report (a stopped holder holds nothing). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.pool
      .query(sql.unsafe`DELETE FROM list_holders WHERE holder_id = ${this.holderId}`)
      .catch(() => undefined);
  }
}
