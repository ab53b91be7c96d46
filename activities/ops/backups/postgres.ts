import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Client as MinioClient } from 'minio';
import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { createPostgresPool } from '../../../lib/clients/postgres';
import type { Config } from '../../../lib/config';
import type { DrillFailure } from '../../../workflows/ops/contract';
import { cancellation, progress } from './progress';
import { streamToObject, verifiedObjectStream, type StoredObject } from './objects';

/**
 * PostgreSQL: `pg_dump` in custom format, streamed into the bucket, inside one snapshot that also gives each
 * table's row count and checksum (so the manifest describes exactly what the dump holds, however busy the
 * database is). The drill restores the dump into a database made from the template that carries pg_partman,
 * leaving out the extension's own entries (a non-superuser cannot create it), and recomputes the same.
 */

export interface TableSum {
  rows: number;
  /** Sum of a 64-bit hash of each row's text, as a decimal (order does not matter). */
  checksum: string;
}

export interface PostgresBackup {
  database: string;
  serverVersion: string;
  object: StoredObject;
  tables: Record<string, TableSum>;
}

const Table = z.object({ name: z.string() });
const Sum = z.object({ rows: z.number(), checksum: z.string() });
const Text = z.object({ value: z.string() });

/** The text of a row is what is hashed: the same settings on both sides, so equal rows give equal text. */
const SAME_TEXT = [
  sql.unsafe`SET LOCAL TimeZone = 'UTC'`,
  sql.unsafe`SET LOCAL DateStyle = 'ISO, YMD'`,
  sql.unsafe`SET LOCAL IntervalStyle = 'postgres'`,
  sql.unsafe`SET LOCAL extra_float_digits = 1`,
  sql.unsafe`SET LOCAL statement_timeout = 0`,
];

/** Every table that holds rows (a partitioned table counts its partitions once, as itself). */
async function tablesOf(db: CommonQueryMethods): Promise<readonly string[]> {
  return db.anyFirst(sql.type(Table)`
    SELECT n.nspname || '.' || c.relname AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
    ORDER BY 1`);
}

export async function tableSum(db: CommonQueryMethods, qualified: string): Promise<TableSum> {
  const [schema, table] = qualified.split('.') as [string, string];
  return db.one(sql.type(Sum)`
    SELECT count(*)::int8 AS rows, coalesce(sum(hashtextextended(t::text, 0)), 0)::text AS checksum
    FROM ${sql.identifier([schema, table])} AS t`);
}

function pgEnv(pg: Config['postgres']): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PGHOST: pg.host,
    PGPORT: String(pg.port),
    PGUSER: pg.user,
    PGPASSWORD: pg.password,
    PGDATABASE: pg.database,
  };
}

/** Resolves when the tool exits 0; otherwise rejects with the end of what it wrote to stderr. */
function exited(child: ChildProcess, tool: string): Promise<void> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${tool} exited ${code ?? signal}: ${stderr.trim()}`)),
    );
  });
}

export async function backupPostgres(
  deps: { pool: DatabasePool; minio: MinioClient; config: Config },
  bucket: string,
  backupId: string,
): Promise<PostgresBackup> {
  const pg = deps.config.postgres;
  const key = `${backupId}/postgres/${pg.database}.dump`;
  return deps.pool.connect((conn) =>
    conn.transaction(async (tx) => {
      await tx.query(sql.unsafe`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`);
      for (const s of SAME_TEXT) await tx.query(s);
      const { value: snapshot } = await tx.one(sql.type(Text)`SELECT pg_export_snapshot() AS value`);
      const { value: serverVersion } = await tx.one(
        sql.type(Text)`SELECT current_setting('server_version') AS value`,
      );
      const dump = spawn(
        path.join(deps.config.backups.pgBinDir, 'pg_dump'),
        ['--format=custom', '--compress=6', `--snapshot=${snapshot}`, '--no-password'],
        { env: pgEnv(pg), stdio: ['ignore', 'pipe', 'pipe'], signal: cancellation() },
      );
      const done = exited(dump, 'pg_dump');
      const upload = streamToObject(deps.minio, bucket, key, dump.stdout!, (bytes) =>
        progress({ store: 'postgres', bytes }),
      );
      // The same snapshot the dump reads: counts and checksums of exactly what it holds.
      const tables: Record<string, TableSum> = {};
      for (const t of await tablesOf(tx)) {
        tables[t] = await tableSum(tx, t);
        progress({ store: 'postgres', summed: t });
      }
      const [object] = await Promise.all([upload, done]);
      return { database: pg.database, serverVersion, object, tables };
    }),
  );
}

/** A restore target's name: the drill's, so a retried drill finds (and replaces) its own leftovers. */
export const drillDatabase = (drillId: string) =>
  `cadenza_drill_${drillId.toLowerCase().replace(/[^a-z0-9]/g, '_')}`.slice(0, 63);

/** The archive's table of contents without pg_partman's extension and schema (the template has them). */
function withoutExtensions(list: string): string {
  return list
    .split('\n')
    .filter((line) => !/^\d+; \d+ \d+ (SCHEMA - partman |EXTENSION - |COMMENT - EXTENSION )/.test(line))
    .join('\n');
}

async function run(tool: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const child = spawn(tool, args, { env, stdio: ['ignore', 'pipe', 'pipe'], signal: cancellation() });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  await exited(child, path.basename(tool));
  return out;
}

/**
 * Restores the dump into a new database `target` (made from the template; one there already is replaced)
 * and compares each table with the manifest. What differs is a failure in the result (the drill records
 * it); only trouble reaching the stores throws (and is retried). The drill drops its target afterwards; an
 * operator's restore (`keep`) leaves it for them.
 */
export async function restorePostgres(
  deps: { pool: DatabasePool; minio: MinioClient; config: Config },
  bucket: string,
  backup: PostgresBackup,
  opts: { target: string; keep?: boolean },
): Promise<{ checks: number; failures: DrillFailure[] }> {
  const cfg = deps.config;
  const { target } = opts;
  const failures: DrillFailure[] = [];
  const fail = (object: string, reason: string) => failures.push({ store: 'postgres', object, reason });
  const dropTarget = () =>
    deps.pool.query(sql.unsafe`DROP DATABASE IF EXISTS ${sql.identifier([target])} WITH (FORCE)`);
  const dir = await mkdtemp(path.join(tmpdir(), 'cadenza-drill-'));
  let checks = 0;
  try {
    // The archive is read from a file: pg_restore seeks in it to restore in dependency order.
    const file = path.join(dir, 'backup.dump');
    const read = await verifiedObjectStream(deps.minio, bucket, backup.object);
    await pipeline(read.stream, createWriteStream(file));
    checks++;
    const damaged = read.verdict();
    if (damaged) fail(backup.object.key, `the object is damaged: ${damaged}`);

    if (opts.keep) {
      // An operator's restore never replaces a database: the one there may be what they switched to.
      const there = await deps.pool.exists(sql.unsafe`SELECT 1 FROM pg_database WHERE datname = ${target}`);
      if (there) throw new Error(`database ${target} exists already: drop or rename it first`);
    } else await dropTarget();
    await deps.pool.query(
      sql.unsafe`CREATE DATABASE ${sql.identifier([target])} TEMPLATE ${sql.identifier([cfg.backups.pgTemplate])}`,
    );
    const env = pgEnv({ ...cfg.postgres, database: target });
    const bin = (tool: string) => path.join(cfg.backups.pgBinDir, tool);
    const listFile = path.join(dir, 'toc.list');
    checks++;
    try {
      await writeFile(listFile, withoutExtensions(await run(bin('pg_restore'), ['--list', file], env)));
      progress({ store: 'postgres', step: 'restoring' });
      await run(
        bin('pg_restore'),
        [
          '--no-owner',
          '--no-privileges',
          '--exit-on-error',
          '--no-password',
          `--use-list=${listFile}`,
          '--dbname',
          target,
          file,
        ],
        env,
      );
    } catch (err) {
      fail(backup.object.key, `pg_restore failed: ${(err as Error).message}`);
      return { checks, failures };
    }
    const restored = await createPostgresPool({ ...cfg.postgres, database: target }, 1);
    try {
      await restored.transaction(async (tx) => {
        for (const s of SAME_TEXT) await tx.query(s);
        const present = new Set(await tablesOf(tx));
        for (const [table, expected] of Object.entries(backup.tables)) {
          checks++;
          progress({ store: 'postgres', comparing: table });
          if (!present.has(table)) {
            fail(table, 'missing from the restored database');
            continue;
          }
          const got = await tableSum(tx, table);
          if (got.rows !== expected.rows)
            fail(table, `${got.rows} rows restored, the source had ${expected.rows}`);
          else if (got.checksum !== expected.checksum)
            fail(table, 'same row count, different contents (checksum)');
        }
      });
    } finally {
      await restored.end();
    }
    return { checks, failures };
  } finally {
    if (!opts.keep) await dropTarget();
    await rm(dir, { recursive: true, force: true });
  }
}
