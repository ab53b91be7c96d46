import { heartbeat, sleep } from '@temporalio/activity';
import type { ClickHouseClient } from '@clickhouse/client';
import type { DatabasePool } from 'slonik';
import { z } from 'zod';
import { ch, ident, join, type ChFragment } from '../../lib/clickhouse-sql';
import { chCount, chRows } from '../../lib/clients/clickhouse';
import type { Counts } from '../../workflows/compliance/contract';
import { storeStatus, storeWorking } from './requests';

/**
 * Step 5 of an erasure: `ALTER TABLE … DELETE` on every table of the database with a `user_id` column —
 * the raw ticks, the rollups the materialized views fed (a view does not pass a delete on), the
 * dimensions — then `system.mutations` is polled until every one is done (18.16 has no mutations_sync).
 * A retry finds its own mutations still running by the user ID in their command and waits for them
 * instead of starting more; a table without the user's rows gets none.
 */

const MERGE_TREE_TABLES = ch`SELECT name FROM system.tables
  WHERE database = currentDatabase() AND engine LIKE '%MergeTree'`;

const TableRow = z.object({ table: z.string() });
const CountRow = z.object({ n: chCount });
const MutationRow = z.object({ table: z.string(), running: chCount, parts: chCount });
const ColumnRow = z.object({ table: z.string(), name: z.string(), type: z.string() });

/** Tables whose `user_id` is a UUID (the ones erasure deletes from). */
export const userTables = () =>
  ch`SELECT table FROM system.columns
    WHERE database = currentDatabase() AND name = 'user_id' AND type = 'UUID'
      AND table IN (${MERGE_TREE_TABLES})
    ORDER BY table`;

export const userRowCount = (table: string, userId: string) =>
  ch`SELECT count() AS n FROM ${ident(table)} WHERE user_id = toUUID(${userId})`;

export const deleteUserRows = (table: string, userId: string) =>
  ch`ALTER TABLE ${ident(table)} DELETE WHERE user_id = toUUID(${userId})`;

/** The user's mutations per table: how many are not done, and the parts they still have to rewrite. */
export const userMutations = (userId: string) =>
  ch`SELECT table, toUInt64(countIf(is_done = 0)) AS running, toUInt64(sum(parts_to_do)) AS parts
    FROM system.mutations
    WHERE database = currentDatabase() AND position(command, ${userId}) > 0
    GROUP BY table`;

/**
 * For verification, found without the name `user_id`: every UUID column whose name mentions a user, and
 * every String column (an ID could hide in text), of every MergeTree table.
 */
export const residueColumns = () =>
  ch`SELECT table, name, type FROM system.columns
    WHERE database = currentDatabase() AND table IN (${MERGE_TREE_TABLES})
      AND ((type = 'UUID' AND position(lower(name), 'user') > 0) OR type = 'String')
    ORDER BY table, name`;

export function residueCount(table: string, columns: { name: string; type: string }[], userId: string) {
  const tests: ChFragment[] = columns.map((c) =>
    c.type === 'UUID'
      ? ch`${ident(c.name)} = toUUID(${userId})`
      : ch`position(lower(${ident(c.name)}), ${userId.toLowerCase()}) > 0`,
  );
  return ch`SELECT count() AS n FROM ${ident(table)} WHERE ${join(tests, ' OR ')}`;
}

export function createClickHouseErasureActivities(deps: {
  pool: DatabasePool;
  clickhouse: ClickHouseClient;
}) {
  const { pool, clickhouse } = deps;
  const command = (q: ChFragment) => clickhouse.command({ query: q.text });

  return {
    async eraseClickHouse(i: { requestId: string; userId: string }): Promise<Counts> {
      const tables = (await chRows(clickhouse, userTables(), TableRow)).map((r) => r.table);
      const counts: Counts = {};
      for (const t of tables)
        counts[t] = (await chRows(clickhouse, userRowCount(t, i.userId), CountRow))[0]?.n ?? 0;
      const found = await storeWorking(pool, i.requestId, 'clickhouse', counts);
      const mutating = new Set(
        (await chRows(clickhouse, userMutations(i.userId), MutationRow))
          .filter((m) => m.running > 0)
          .map((m) => m.table),
      );
      // Every table at once: ClickHouse runs the mutations side by side.
      await Promise.all(
        tables
          .filter((t) => (counts[t] ?? 0) > 0 && !mutating.has(t))
          .map((t) => command(deleteUserRows(t, i.userId))),
      );
      for (;;) {
        const pending = (await chRows(clickhouse, userMutations(i.userId), MutationRow)).filter(
          (m) => m.running > 0,
        );
        if (!pending.length) break;
        heartbeat({ mutations: Object.fromEntries(pending.map((m) => [m.table, m.parts])) });
        await sleep(100);
      }
      await storeStatus(pool, i.requestId, 'clickhouse', 'done');
      return found;
    },

    async verifyClickHouse(i: {
      requestId: string;
      userId: string;
    }): Promise<{ clean: boolean; residue: Counts; checked: number }> {
      const columns = await chRows(clickhouse, residueColumns(), ColumnRow);
      const byTable = new Map<string, { name: string; type: string }[]>();
      for (const c of columns) byTable.set(c.table, [...(byTable.get(c.table) ?? []), c]);
      const residue: Counts = {};
      for (const [table, cols] of byTable) {
        heartbeat({ verifying: table });
        const n = (await chRows(clickhouse, residueCount(table, cols, i.userId), CountRow))[0]?.n ?? 0;
        if (n) residue[table] = n;
      }
      const clean = Object.keys(residue).length === 0;
      await storeStatus(
        pool,
        i.requestId,
        'clickhouse',
        clean ? 'verified' : 'residue',
        clean ? null : residue,
      );
      return { clean, residue, checked: byTable.size };
    },
  };
}
