import { createPool, sql, type DatabasePool } from 'slonik';
import type { Config } from '../config';
import { measureHealth, type Health } from './health';

export function postgresUri(pg: Config['postgres']): string {
  const auth = `${encodeURIComponent(pg.user)}:${encodeURIComponent(pg.password)}`;
  return `postgresql://${auth}@${pg.host}:${pg.port}/${encodeURIComponent(pg.database)}`;
}

export async function createPostgresPool(
  pg: Config['postgres'],
  maximumPoolSize = 10,
): Promise<DatabasePool> {
  return createPool(postgresUri(pg), { maximumPoolSize, connectionTimeout: 5000, statementTimeout: 60_000 });
}

export function postgresHealth(pool: DatabasePool): Promise<Health> {
  return measureHealth('postgres', () => pool.oneFirst(sql.unsafe`SELECT 1`));
}
