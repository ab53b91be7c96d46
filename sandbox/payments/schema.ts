import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { createPostgresPool } from '../../lib/clients/postgres';
import type { Config } from '../../lib/config';

/**
 * The sandbox keeps its records in a database of its own: it plays an external provider, so its tables
 * are not project migrations and never meet Cadenza's schema.
 */

const DUPLICATE_DATABASE = '42P04';
const UNIQUE_VIOLATION = '23505';

function pgCode(err: unknown): string | undefined {
  const e = err as { code?: string; cause?: { code?: string } };
  return e.code ?? e.cause?.code;
}

/** Creates the sandbox's database through the main one when it is missing (the role may CREATEDB). */
export async function ensureDatabase(pg: Config['postgres'], database: string): Promise<void> {
  const admin = await createPostgresPool(pg, 1);
  try {
    const found = await admin.maybeOneFirst(
      sql.type(
        z.object({ found: z.number() }),
      )`SELECT 1 AS found FROM pg_database WHERE datname = ${database}`,
    );
    if (found) return;
    await admin.query(sql.unsafe`CREATE DATABASE ${sql.identifier([database])}`);
  } catch (err) {
    // Two sandboxes starting at once: the loser's CREATE DATABASE fails either way; the database exists.
    if (![DUPLICATE_DATABASE, UNIQUE_VIOLATION].includes(pgCode(err) ?? '')) throw err;
  } finally {
    await admin.end();
  }
}

export async function ensureSchema(pool: DatabasePool): Promise<void> {
  // One statement at a time: IF NOT EXISTS makes each idempotent, and concurrent starts are rare.
  for (const statement of [
    sql.unsafe`CREATE TABLE IF NOT EXISTS payment_methods (
      token text PRIMARY KEY,
      test_method text NOT NULL,
      brand text NOT NULL,
      last4 text NOT NULL,
      exp_month int NOT NULL,
      exp_year int NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`,
    // status: processing (a request owns the key), server_error (answered 503, nothing charged, a retry
    // may take the key over), then succeeded or declined for good.
    sql.unsafe`CREATE TABLE IF NOT EXISTS charges (
      id text PRIMARY KEY,
      idempotency_key text NOT NULL UNIQUE,
      fingerprint text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('charge', 'authorization')),
      token text NOT NULL REFERENCES payment_methods (token) ON DELETE CASCADE,
      amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
      currency char(3) NOT NULL,
      status text NOT NULL CHECK (status IN ('processing', 'server_error', 'succeeded', 'declined')),
      decline_code text,
      decline_kind text CHECK (decline_kind IN ('soft', 'hard')),
      metadata jsonb NOT NULL DEFAULT '{}',
      attempts int NOT NULL DEFAULT 1,
      claimed_at timestamptz NOT NULL DEFAULT now(),
      created_at timestamptz NOT NULL DEFAULT now()
    )`,
    // A detached method (GDPR erasure) is never charged again.
    sql.unsafe`ALTER TABLE payment_methods ADD COLUMN IF NOT EXISTS detached_at timestamptz`,
    sql.unsafe`CREATE INDEX IF NOT EXISTS charges_subscription_period
      ON charges ((metadata->>'subscription_id'), (metadata->>'period'))`,
    sql.unsafe`CREATE TABLE IF NOT EXISTS refunds (
      id text PRIMARY KEY,
      idempotency_key text NOT NULL UNIQUE,
      fingerprint text NOT NULL,
      charge_id text NOT NULL REFERENCES charges (id) ON DELETE CASCADE,
      amount_minor bigint NOT NULL CHECK (amount_minor > 0),
      created_at timestamptz NOT NULL DEFAULT now()
    )`,
  ]) {
    try {
      await pool.query(statement);
    } catch (err) {
      // Concurrent CREATE ... IF NOT EXISTS can still collide in the catalog; the object is there.
      if (pgCode(err) !== UNIQUE_VIOLATION) throw err;
    }
  }
}
