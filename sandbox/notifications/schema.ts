import { sql, type DatabasePool } from 'slonik';

/**
 * The notification sandbox keeps what it received in a database of its own (it plays an external provider:
 * its tables are not project migrations). One row per idempotency key; `deliveries` counts how often the key
 * arrived, so a test sees at-least-once delivery collapse into one notification.
 */
export async function ensureNotificationSchema(pool: DatabasePool): Promise<void> {
  for (const statement of [
    sql.unsafe`CREATE TABLE IF NOT EXISTS notifications (
      id text PRIMARY KEY,
      idempotency_key text NOT NULL UNIQUE,
      fingerprint text NOT NULL,
      topic text NOT NULL,
      user_id uuid NOT NULL,
      email text NOT NULL,
      language text NOT NULL,
      data jsonb NOT NULL,
      deliveries int NOT NULL DEFAULT 1,
      received_at timestamptz NOT NULL DEFAULT now(),
      last_delivery_at timestamptz NOT NULL DEFAULT now()
    )`,
  ]) {
    try {
      await pool.query(statement);
    } catch (err) {
      // Two sandboxes starting at once can collide in the catalog; the table is there.
      if ((err as { code?: string; cause?: { code?: string } }).cause?.code !== '23505') throw err;
    }
  }
}
