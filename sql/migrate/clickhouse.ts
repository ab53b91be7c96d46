import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../lib/config';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { ch, ident } from '../../lib/clickhouse-sql';

export const CLICKHOUSE_DDL = path.join(__dirname, '..', '..', 'sql', 'clickhouse');

/** The statements of one DDL file: comments dropped, split at semicolons that end a line. */
export function statementsOf(sqlText: string): string[] {
  return sqlText
    .split('\n')
    .filter((line) => !line.trim().startsWith('--'))
    .join('\n')
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function clickHouseMigrations(): { version: string; checksum: string; statements: string[] }[] {
  return readdirSync(CLICKHOUSE_DDL)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => {
      const text = readFileSync(path.join(CLICKHOUSE_DDL, f), 'utf8');
      return {
        version: f.replace(/\.sql$/, ''),
        checksum: createHash('sha256').update(text).digest('hex'),
        statements: statementsOf(text),
      };
    });
}

/**
 * Applies sql/clickhouse in order, recording each file in schema_migrations with its checksum.
 * A file already applied is skipped; one that changed after it was applied is an error (add a new file).
 */
export async function migrateClickHouse(cfg: Config['clickhouse']): Promise<string[]> {
  const server = createClickHouse(cfg, null);
  try {
    await server.command({ query: ch`CREATE DATABASE IF NOT EXISTS ${ident(cfg.database)}`.text });
  } finally {
    await server.close();
  }
  const client = createClickHouse(cfg);
  try {
    await client.command({
      query: `CREATE TABLE IF NOT EXISTS schema_migrations (version String, checksum String, applied_at DateTime('UTC') DEFAULT now())
              ENGINE = MergeTree() ORDER BY version`,
    });
    const rows = await (
      await client.query({ query: 'SELECT version, checksum FROM schema_migrations', format: 'JSONEachRow' })
    ).json<{
      version: string;
      checksum: string;
    }>();
    const applied = new Map(rows.map((r) => [r.version, r.checksum]));
    const done: string[] = [];
    for (const m of clickHouseMigrations()) {
      const seen = applied.get(m.version);
      if (seen === m.checksum) continue;
      if (seen)
        throw new Error(
          `ClickHouse migration ${m.version} changed after it was applied; add a new file instead`,
        );
      for (const statement of m.statements) await client.command({ query: statement });
      await client.insert({
        table: 'schema_migrations',
        values: [{ version: m.version, checksum: m.checksum }],
        format: 'JSONEachRow',
      });
      done.push(m.version);
    }
    return done;
  } finally {
    await client.close();
  }
}
