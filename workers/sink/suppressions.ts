import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { encodeSuppressions } from './convert';
import { userKey } from '../../domain/play-ticks/rows';

/**
 * Users whose play-ticks must be dropped (GDPR erasure adds them). Held in memory and refreshed
 * on an interval, so the hot path is a Set lookup.
 */
export class SuppressionList {
  private users = new Set<string>();
  private shared: SharedArrayBuffer | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly pool: DatabasePool) {}

  async refresh(): Promise<void> {
    const ids = await this.pool.anyFirst(
      sql.type(z.object({ user_id: z.string() }))`SELECT user_id::text AS user_id FROM play_suppressions`,
    );
    this.users = new Set(ids.map(userKey));
    this.shared = undefined;
  }

  /** The list as shared memory for the sink's threads; one per refresh. */
  snapshot(): SharedArrayBuffer {
    this.shared ??= encodeSuppressions(this.users);
    return this.shared;
  }

  /** The membership test for rows (by `userKey`), or null while the list is empty. */
  lookup(): ((key: string) => boolean) | null {
    const users = this.users;
    return users.size ? (key) => users.has(key) : null;
  }

  async start(intervalMs = 15_000): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
