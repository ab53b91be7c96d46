import { randomBytes } from 'node:crypto';
import { sql } from 'slonik';
import { createClickHouse } from '../lib/clients/clickhouse';
import { createPostgresPool } from '../lib/clients/postgres';
import { ch, ident } from '../lib/clickhouse-sql';
import type { Config } from '../lib/config';
import { TEMPLATE } from './services/postgres';

/**
 * Throw-away databases for a test file or a benchmark: a PostgreSQL database made from the stack's template
 * (which carries pg_partman) and a ClickHouse database, both empty. drop() removes them.
 */
export async function scratchDatabases(base: Config): Promise<{ config: Config; drop: () => Promise<void> }> {
  const name = `cadenza_t_${randomBytes(4).toString('hex')}`;
  const admin = await createPostgresPool(base.postgres, 1);
  await admin.query(
    sql.unsafe`CREATE DATABASE ${sql.identifier([name])} TEMPLATE ${sql.identifier([TEMPLATE])}`,
  );
  const chServer = createClickHouse(base.clickhouse, null);
  await chServer.command({ query: ch`CREATE DATABASE ${ident(name)}`.text });
  const config: Config = {
    ...base,
    postgres: { ...base.postgres, database: name },
    clickhouse: { ...base.clickhouse, database: name },
  };
  return {
    config,
    drop: async () => {
      await admin.query(sql.unsafe`DROP DATABASE IF EXISTS ${sql.identifier([name])} WITH (FORCE)`);
      await chServer.command({ query: ch`DROP DATABASE IF EXISTS ${ident(name)}`.text });
      await Promise.allSettled([admin.end(), chServer.close()]);
    },
  };
}
