import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { Counts } from '../../workflows/compliance/contract';
import { storeStatus, storeWorking } from './requests';

/**
 * Step 4 of an erasure, in one transaction: what is personal and not needed is deleted; what finance must
 * keep is pseudonymised — the users row keeps its ID (the key of the kept payments and subscriptions) with
 * a placeholder e-mail and name; payment transactions and subscription history keep amounts and dates and
 * lose the payment method. No amount is touched, so every total finance reports stays the same.
 */

export const ERASED_NAME = 'Erased user';
export const erasedEmail = (userId: string) => `erased+${userId}@erased.invalid`;

/** What is deleted, in order (children before the rows they point to): table → statement. */
const DELETIONS: { name: string; statement: (userId: string) => ReturnType<typeof sql.unsafe> }[] = [
  { name: 'session_logs', statement: (u) => sql.unsafe`DELETE FROM session_logs WHERE user_id = ${u}` },
  {
    name: 'user_follows',
    statement: (u) => sql.unsafe`DELETE FROM user_follows WHERE follower_id = ${u} OR followee_id = ${u}`,
  },
  {
    name: 'playlist_tracks_added_by',
    statement: (u) => sql.unsafe`UPDATE playlist_tracks SET added_by = NULL WHERE added_by = ${u}`,
  },
  // Their playlists' tracks go with them (ON DELETE CASCADE); counted first.
  {
    name: 'playlist_tracks',
    statement: (u) => sql.unsafe`SELECT 1 FROM playlist_tracks pt JOIN playlists p USING (playlist_id)
      WHERE p.owner_id = ${u}`,
  },
  { name: 'playlists', statement: (u) => sql.unsafe`DELETE FROM playlists WHERE owner_id = ${u}` },
  { name: 'user_recs', statement: (u) => sql.unsafe`DELETE FROM user_recs WHERE user_id = ${u}` },
  { name: 'ad_impressions', statement: (u) => sql.unsafe`DELETE FROM ad_impressions WHERE user_id = ${u}` },
  { name: 'outbox_messages', statement: (u) => sql.unsafe`DELETE FROM outbox_messages WHERE user_id = ${u}` },
  {
    name: 'subscriptions_payment_method',
    statement: (u) => sql.unsafe`UPDATE subscriptions SET payment_method_id = NULL
      WHERE user_id = ${u} AND payment_method_id IS NOT NULL`,
  },
  {
    name: 'payment_transactions_payment_method',
    statement: (u) => sql.unsafe`UPDATE payment_transactions SET payment_method_id = NULL
      WHERE user_id = ${u} AND payment_method_id IS NOT NULL`,
  },
  { name: 'payment_methods', statement: (u) => sql.unsafe`DELETE FROM payment_methods WHERE user_id = ${u}` },
  {
    name: 'users_pseudonymised',
    statement: (u) => sql.unsafe`UPDATE users SET email = ${erasedEmail(u)}, display_name = ${ERASED_NAME},
        birth_year = NULL, parental_controls = false, language = 'en', tier = 'free',
        erased_at = coalesce(erased_at, now())
      WHERE user_id = ${u} AND (email <> ${erasedEmail(u)} OR display_name <> ${ERASED_NAME}
        OR birth_year IS NOT NULL OR parental_controls OR language <> 'en' OR tier <> 'free' OR erased_at IS NULL)`,
  },
];

/**
 * Columns that keep the user's (pseudonymous) ID on purpose, and what the verification then checks of
 * the row: finance's records, the request itself, and the lists that keep their data out.
 */
export const KEPT_REFERENCES: Record<string, string> = {
  'users.user_id': 'placeholder e-mail and name, erased_at set, no birth year',
  'subscriptions.user_id': 'plan, price, period, status (finance); no payment method',
  'payment_transactions.user_id': 'amounts and dates (finance); no payment method',
  'gdpr_requests.user_id': 'the request and its proof',
  'play_suppressions.user_id': 'the sink drops their ticks still in Kafka',
};

const Column = z.object({ table_name: z.string(), column_name: z.string() });
const Count = z.object({ n: z.number() });
const Placeholder = z.object({ ok: z.boolean() });

export function createPostgresErasureActivities(pool: DatabasePool) {
  return {
    async erasePostgres(i: { requestId: string; userId: string }): Promise<Counts> {
      return pool.transaction(async (tx) => {
        const counts: Counts = {};
        for (const d of DELETIONS) counts[d.name] = (await tx.query(d.statement(i.userId))).rowCount;
        const found = await storeWorking(tx, i.requestId, 'postgres', counts);
        await storeStatus(tx, i.requestId, 'postgres', 'done');
        return found;
      });
    },

    /**
     * Independent of the deletion above: every uuid column of every table that points at users (a foreign
     * key) or is named for a person (`user_id`, `owner_id`, `follower_id`, `added_by` …) is counted for the
     * user; only the kept references may hold it, and their rows must be pseudonymised. A table added later
     * with the user in it shows up here as residue until the erasure learns it.
     */
    async verifyPostgres(i: {
      requestId: string;
      userId: string;
    }): Promise<{ clean: boolean; residue: Counts; checked: number }> {
      const columns = await pool.any(sql.type(Column)`
        SELECT DISTINCT table_name, column_name FROM (
          SELECT c.table_name::text, c.column_name::text
          FROM information_schema.columns c
          WHERE c.table_schema = 'public' AND c.data_type = 'uuid'
            AND c.column_name ~ '(^|_)(user|owner|follower|followee|listener|member|subscriber|added_by|person)(_id)?$'
          UNION ALL
          SELECT k.conrelid::regclass::text, a.attname::text
          FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
          WHERE k.contype = 'f' AND k.confrelid = 'public.users'::regclass
        ) named
        JOIN pg_class t ON t.relname = named.table_name AND t.relnamespace = 'public'::regnamespace
        WHERE NOT t.relispartition AND t.relkind IN ('r', 'p')
        ORDER BY 1, 2`);
      const residue: Counts = {};
      for (const c of columns) {
        const key = `${c.table_name}.${c.column_name}`;
        if (key in KEPT_REFERENCES) continue;
        const { n } = await pool.one(sql.type(Count)`
          SELECT count(*)::int AS n FROM ${sql.identifier([c.table_name])}
          WHERE ${sql.identifier([c.column_name])} = ${i.userId}`);
        if (n) residue[key] = n;
      }
      const kept = await pool.one(sql.type(Placeholder)`
        SELECT NOT EXISTS (
            SELECT 1 FROM users WHERE user_id = ${i.userId}
              AND (email <> ${erasedEmail(i.userId)} OR display_name <> ${ERASED_NAME} OR birth_year IS NOT NULL
                   OR erased_at IS NULL))
          AND NOT EXISTS (SELECT 1 FROM subscriptions WHERE user_id = ${i.userId} AND payment_method_id IS NOT NULL)
          AND NOT EXISTS (SELECT 1 FROM payment_transactions WHERE user_id = ${i.userId} AND payment_method_id IS NOT NULL)
          AS ok`);
      if (!kept.ok) residue['kept rows not pseudonymised'] = 1;
      const clean = Object.keys(residue).length === 0;
      await storeStatus(
        pool,
        i.requestId,
        'postgres',
        clean ? 'verified' : 'residue',
        clean ? null : residue,
      );
      return { clean, residue, checked: columns.length };
    },
  };
}
