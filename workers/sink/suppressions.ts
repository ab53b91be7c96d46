import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

/**
 * Users whose play-ticks must be dropped (GDPR erasure adds them). Held in memory and refreshed
 * on an interval, so the hot path is a Set lookup.
 */
export class SuppressionList {
  private users = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly pool: DatabasePool) {}

  async refresh(): Promise<void> {
    const ids = await this.pool.anyFirst(
      sql.type(z.object({ user_id: z.string() }))`SELECT user_id::text AS user_id FROM play_suppressions`,
    );
    this.users = new Set(ids);
  }

  has(userId: string): boolean {
    return this.users.has(userId);
  }

  get size(): number {
    return this.users.size;
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
