import type { ClickHouseClient } from '@clickhouse/client';
import type { Client as MinioClient } from 'minio';
import { z } from 'zod';
import { ch, ident, join, type ChFragment } from '../../../lib/clickhouse-sql';
import { chCount, chRows, createClickHouse } from '../../../lib/clients/clickhouse';
import type { Config } from '../../../lib/config';
import type { DrillFailure } from '../../../workflows/ops/contract';
import { cancellation, progress } from './progress';
import {
  putSmallObject,
  readSmallObject,
  streamToObject,
  verifiedObjectStream,
  type StoredObject,
} from './objects';

/**
 * ClickHouse, the same way on 18.16 and current releases: each table's DDL (`SHOW CREATE TABLE`) and, for
 * the MergeTree family, its rows exported in the Native format over HTTP and streamed into the bucket
 * (`wait_end_of_query`, so an error mid-export fails the request instead of ending the file early).
 * ClickHouse has no snapshots: a table's count and checksum are taken before and after its export, and the
 * export is consistent when they agree (retried a few times while inserts go on). The checksum is over what
 * queries see (`FINAL`), so it does not depend on how far background merges have got on either side.
 */

export interface ClickHouseTableBackup {
  name: string;
  engine: string;
  ddl: StoredObject;
  /** Rows in Native format; null for views and engines without data of their own. */
  data: StoredObject | null;
  rows: number | null;
  checksum: string | null;
  /** The table did not change during its export; otherwise `rows`..`rowsAfter` bound what the file holds. */
  consistent: boolean;
  rowsAfter?: number;
}

export interface ClickHouseBackup {
  database: string;
  serverVersion: string;
  tables: ClickHouseTableBackup[];
}

const TableRow = z.object({ name: z.string(), engine: z.string() });
const ColumnRow = z.object({ name: z.string(), type: z.string() });
const SumRow = z.object({ rows: chCount, checksum: z.string() });
const DdlRow = z.object({ statement: z.string() });
const Version = z.object({ version: z.string() });

const PLAIN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const hasData = (engine: string) => engine.endsWith('MergeTree');
/** Engines that collapse rows in merges: their checksum is over `FINAL`. */
const collapses = (engine: string) => hasData(engine) && engine !== 'MergeTree';
const EXPORT_ATTEMPTS = 3;

/** `toString` of each column (finalised when it is an aggregate state): cityHash64 takes no UUID on 18.16. */
export function checksumQuery(
  table: string,
  engine: string,
  columns: { name: string; type: string }[],
): ChFragment {
  const values = join(
    columns.map((c) =>
      c.type.startsWith('AggregateFunction(')
        ? ch`toString(finalizeAggregation(${ident(c.name)}))`
        : ch`toString(${ident(c.name)})`,
    ),
    ', ',
  );
  const final = collapses(engine) ? ch` FINAL` : ch``;
  return ch`SELECT count() AS rows, toString(sum(cityHash64(${values}))) AS checksum FROM ${ident(table)}${final}`;
}

async function tableSum(client: ClickHouseClient, table: string, engine: string) {
  // The columns `SELECT *` returns (MATERIALIZED and ALIAS columns are not exported), in the table's order
  // (18.16's system.columns has no position column to sort by).
  const columns = await chRows(
    client,
    ch`SELECT name, type FROM system.columns
       WHERE database = currentDatabase() AND table = ${table} AND default_kind NOT IN ('MATERIALIZED', 'ALIAS')`,
    ColumnRow,
  );
  const [sum] = await chRows(client, checksumQuery(table, engine, columns), SumRow);
  return sum as { rows: number; checksum: string };
}

export async function backupClickHouse(
  deps: { clickhouse: ClickHouseClient; minio: MinioClient; config: Config },
  bucket: string,
  backupId: string,
): Promise<ClickHouseBackup> {
  const client = deps.clickhouse;
  const database = deps.config.clickhouse.database;
  const [{ version } = { version: '' }] = await chRows(client, ch`SELECT version() AS version`, Version);
  const tables = (
    await chRows(
      client,
      ch`SELECT name, engine FROM system.tables WHERE database = currentDatabase() ORDER BY name`,
      TableRow,
    )
  ).filter((t) => PLAIN.test(t.name));
  const out: ClickHouseTableBackup[] = [];
  for (const t of tables) {
    const [{ statement } = { statement: '' }] = await chRows(
      client,
      ch`SHOW CREATE TABLE ${ident(t.name)}`,
      DdlRow,
    );
    const ddl = await putSmallObject(deps.minio, bucket, `${backupId}/clickhouse/${t.name}.sql`, statement);
    if (!hasData(t.engine)) {
      out.push({ ...t, ddl, data: null, rows: null, checksum: null, consistent: true });
      continue;
    }
    let entry: ClickHouseTableBackup | undefined;
    for (let attempt = 1; attempt <= EXPORT_ATTEMPTS; attempt++) {
      const before = await tableSum(client, t.name, t.engine);
      const exported = await client.exec({
        query: ch`SELECT * FROM ${ident(t.name)} FORMAT Native`.text,
        clickhouse_settings: { wait_end_of_query: 1 },
        abort_signal: cancellation(),
      });
      const data = await streamToObject(
        deps.minio,
        bucket,
        `${backupId}/clickhouse/${t.name}.native`,
        exported.stream,
        (bytes) => progress({ store: 'clickhouse', table: t.name, bytes }),
      );
      const after = await tableSum(client, t.name, t.engine);
      const consistent = before.rows === after.rows && before.checksum === after.checksum;
      entry = {
        ...t,
        ddl,
        data,
        rows: before.rows,
        checksum: before.checksum,
        consistent,
        ...(consistent ? {} : { rowsAfter: after.rows }),
      };
      if (consistent) break;
    }
    out.push(entry as ClickHouseTableBackup);
  }
  return { database, serverVersion: version, tables: out };
}

/** The DDL aimed at another database: every `<db>.` qualifier (plain or quoted) becomes `<target>.`. */
export function retarget(ddl: string, from: string, to: string): string {
  const name = from.replace(/[^\w]/g, '');
  return ddl.replace(new RegExp(`(^|[^\\w.\`])\`?${name}\`?\\.`, 'g'), `$1${to}.`);
}

/** Restores every table into the new database `target` (replaced if there), then compares with the manifest. */
export async function restoreClickHouse(
  deps: { minio: MinioClient; config: Config },
  bucket: string,
  backup: ClickHouseBackup,
  opts: { target: string; keep?: boolean },
): Promise<{ checks: number; failures: DrillFailure[] }> {
  const { target } = opts;
  const server = createClickHouse(deps.config.clickhouse, null);
  const client = createClickHouse({ ...deps.config.clickhouse, database: target });
  const failures: DrillFailure[] = [];
  const fail = (object: string, reason: string) => failures.push({ store: 'clickhouse', object, reason });
  let checks = 0;
  try {
    // An operator's restore never replaces a database (CREATE fails when it exists); the drill's own does.
    if (!opts.keep) await server.command({ query: ch`DROP DATABASE IF EXISTS ${ident(target)}`.text });
    await server.command({ query: ch`CREATE DATABASE ${ident(target)}`.text });
    // Tables first, their rows, then views (a view made earlier would feed its table a second time).
    const ordered = [
      ...backup.tables.filter((t) => t.engine !== 'MaterializedView'),
      ...backup.tables.filter((t) => t.engine === 'MaterializedView'),
    ];
    const restored = new Set<string>();
    for (const t of ordered) {
      checks++;
      progress({ store: 'clickhouse', restoring: t.name });
      try {
        const ddl = (await readSmallObject(deps.minio, bucket, t.ddl.key)).toString('utf8');
        await client.command({ query: retarget(ddl, backup.database, target) });
        if (t.data) {
          const read = await verifiedObjectStream(deps.minio, bucket, t.data);
          const inserted = await client.exec({
            query: ch`INSERT INTO ${ident(t.name)} FORMAT Native`.text,
            values: read.stream,
            abort_signal: cancellation(),
          });
          inserted.stream.resume();
          const damaged = read.verdict();
          if (damaged) fail(t.name, `the object is damaged: ${damaged}`);
        }
        restored.add(t.name);
      } catch (err) {
        fail(t.name, `restore failed: ${(err as Error).message.slice(0, 500)}`);
      }
    }
    for (const t of backup.tables) {
      if (!t.data || !restored.has(t.name) || t.rows === null) continue;
      checks++;
      const got = await tableSum(client, t.name, t.engine);
      if (t.consistent) {
        if (got.rows !== t.rows) fail(t.name, `${got.rows} rows restored, the source had ${t.rows}`);
        else if (got.checksum !== t.checksum) fail(t.name, 'same row count, different contents (checksum)');
      } else if (got.rows < t.rows || got.rows > (t.rowsAfter ?? t.rows)) {
        fail(
          t.name,
          `${got.rows} rows restored, the source had ${t.rows}–${t.rowsAfter} while it was exported`,
        );
      }
    }
    return { checks, failures };
  } finally {
    if (!opts.keep)
      await server
        .command({ query: ch`DROP DATABASE IF EXISTS ${ident(target)}`.text })
        .catch(() => undefined);
    await Promise.allSettled([server.close(), client.close()]);
  }
}
