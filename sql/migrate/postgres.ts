import path from 'node:path';
import { runner } from 'node-pg-migrate';
import type { Config } from '../../lib/config';
import { postgresUri } from '../../lib/clients/postgres';

export const POSTGRES_MIGRATIONS = path.join(__dirname, '..', '..', 'sql', 'postgres');

/**
 * Applies the ordered plain-SQL migrations in sql/postgres with node-pg-migrate (each in its own
 * transaction, under an advisory lock so two runners never interleave). Returns the names applied.
 */
export async function migratePostgres(
  pg: Config['postgres'],
  log: (msg: string) => void = () => undefined,
): Promise<string[]> {
  const applied = await runner({
    databaseUrl: postgresUri(pg),
    dir: POSTGRES_MIGRATIONS,
    migrationsTable: 'pgmigrations',
    direction: 'up',
    count: Infinity,
    checkOrder: true,
    verbose: false,
    log,
    logger: { debug: () => undefined, info: log, warn: log, error: log },
  });
  return applied.map((m) => m.name);
}
