import {
  createPool,
  createTypeParserPreset,
  sql,
  type DatabasePool,
  type Interceptor,
  type DriverTypeParser as TypeParser,
} from 'slonik';
import pg from 'pg';
import type { Config } from '../config';
import { childLogger } from '../logger';
import { measureHealth, type Health } from './health';

export function postgresUri(pg: Config['postgres']): string {
  const auth = `${encodeURIComponent(pg.user)}:${encodeURIComponent(pg.password)}`;
  return `postgresql://${auth}@${pg.host}:${pg.port}/${encodeURIComponent(pg.database)}`;
}

/** A row that does not have the shape its query declared (`sql.type(schema)`): a bug, named loudly. */
export class RowShapeError extends Error {
  constructor(query: string, issues: string) {
    super(
      `row does not match the query's declared type (${issues}) in: ${query.replace(/\s+/g, ' ').slice(0, 300)}`,
    );
    this.name = 'RowShapeError';
  }
}

/**
 * Checks every row of a `sql.type(zodRow)` query against its schema (slonik hands the parser to
 * interceptors only; without this, a declared type is never checked) and returns the parsed row.
 */
export const checkedRows: Interceptor = {
  name: 'cadenza-checked-rows',
  transformRow(context, query, row) {
    const parser = context.resultParser;
    if (!parser) return row;
    const parsed = parser.safeParse(row);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || 'row'}: ${i.message}`).join('; ');
      throw new RowShapeError(query.sql, issues);
    }
    return parsed.data as typeof row;
  },
};

/**
 * Money is exact (DESIGN §2): NUMERIC arrives as its decimal text, never a float (slonik's preset would
 * parseFloat it). int8 counts arrive as numbers while they are exact, and fail loudly past 2^53.
 */
const exactTypes: readonly TypeParser[] = [
  ...createTypeParserPreset().filter((p) => p.name !== 'numeric' && p.name !== 'int8'),
  { name: 'numeric', parse: (value: string) => value },
  {
    name: 'int8',
    parse: (value: string) => {
      const n = Number(value);
      if (!Number.isSafeInteger(n)) throw new RangeError(`int8 ${value} is beyond exact JavaScript numbers`);
      return n;
    },
  },
];

export async function createPostgresPool(
  pg: Config['postgres'],
  maximumPoolSize = 10,
): Promise<DatabasePool> {
  return createPool(postgresUri(pg), {
    maximumPoolSize,
    connectionTimeout: 5000,
    statementTimeout: 60_000,
    interceptors: [checkedRows],
    typeParsers: exactTypes,
  });
}

export function postgresHealth(pool: DatabasePool): Promise<Health> {
  return measureHealth('postgres', () => pool.oneFirst(sql.unsafe`SELECT 1`));
}

/**
 * A plain pg pool for what slonik does not speak: COPY streams (bulk snapshots, statement lines). Every
 * value still goes through bound parameters or COPY's own format, never through SQL text.
 */
const log = childLogger('postgres');

export function createCopyPool(cfg: Config['postgres'], max = 2): pg.Pool {
  const pool = new pg.Pool({ connectionString: postgresUri(cfg), max, connectionTimeoutMillis: 5000 });
  // An idle connection that dies (a server restart) is replaced on the next checkout, never a crash.
  pool.on('error', (err) => log.warn({ err }, 'idle PostgreSQL connection closed'));
  return pool;
}
