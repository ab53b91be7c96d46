import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { exists, run, type StackContext } from '../context';
import { tcpProbe } from '../probes';
import type { ServiceDef } from './types';

const PG_BIN = '/usr/lib/postgresql/15/bin';
/** Databases are made from this template: it carries pg_partman (superuser-only to install). */
export const TEMPLATE = 'cadenza_template';
const isRoot = () => process.getuid?.() === 0;

/**
 * PostgreSQL runs as the `postgres` user, which may not be able to enter the state folder (a clone
 * under /root, say). Then its data lives under /var/lib/cadenza-postgres/<hash of the state path>
 * instead, still one per state folder; `reset` removes it too.
 */
const reachable = new Map<string, boolean>();
function postgresCanEnter(dir: string): boolean {
  if (!isRoot()) return true;
  if (!reachable.has(dir))
    reachable.set(dir, spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', dir]).status === 0);
  return reachable.get(dir) as boolean;
}

export function postgresHome(ctx: StackContext): string {
  if (postgresCanEnter(ctx.state)) return path.join(ctx.state, 'postgres');
  return path.join(
    '/var/lib/cadenza-postgres',
    createHash('sha256').update(ctx.state).digest('hex').slice(0, 16),
  );
}

function dirs(ctx: StackContext) {
  const home = postgresHome(ctx);
  return { data: path.join(home, 'data'), socket: path.join(home, 'run') };
}

/** PostgreSQL refuses to run as root: as root, run it as the Debian package's `postgres` user. */
async function asPostgres(cmd: string, args: string[], input?: string): Promise<string> {
  if (!isRoot()) return run('postgres', cmd, args, { input });
  return run('postgres', 'runuser', ['-u', 'postgres', '--', cmd, ...args], { input });
}

async function chownToPostgres(dir: string): Promise<void> {
  if (!isRoot()) return;
  const uid = Number((await run('postgres', 'id', ['-u', 'postgres'])).trim());
  const gid = Number((await run('postgres', 'id', ['-g', 'postgres'])).trim());
  chownSync(dir, uid, gid);
}

function psql(ctx: StackContext, database: string, sqlText: string): Promise<string> {
  const { socket } = dirs(ctx);
  const port = String(ctx.config.postgres.port);
  return asPostgres(
    `${PG_BIN}/psql`,
    ['-v', 'ON_ERROR_STOP=1', '-qAt', '-h', socket, '-p', port, '-U', 'postgres', '-d', database],
    sqlText,
  );
}

const quoteLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;
const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

export const postgres: ServiceDef = {
  name: 'postgres',
  apt: ['postgresql-15', 'postgresql-15-partman', 'postgresql-client-15'],
  ports: (ctx) => [ctx.config.postgres.port],
  async prepare(ctx) {
    const { data, socket } = dirs(ctx);
    mkdirSync(socket, { recursive: true });
    await chownToPostgres(path.dirname(socket));
    await chownToPostgres(socket);
    if (exists(path.join(data, 'PG_VERSION'))) return;
    mkdirSync(data, { recursive: true });
    await chownToPostgres(data);
    await asPostgres(`${PG_BIN}/initdb`, [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C.UTF-8',
    ]);
    writeFileSync(
      path.join(data, 'postgresql.auto.conf'),
      [
        'shared_buffers = 256MB',
        'max_connections = 200',
        "timezone = 'UTC'",
        'log_min_messages = warning',
        '',
      ].join('\n'),
    );
    await chownToPostgres(path.join(data, 'postgresql.auto.conf'));
  },
  program(ctx) {
    const { data, socket } = dirs(ctx);
    const { host, port } = ctx.config.postgres;
    return {
      command: `${PG_BIN}/postgres -D ${data} -p ${port} -k ${socket} -c listen_addresses=${host}`,
      user: isRoot() ? 'postgres' : undefined,
      // The work tree may be closed to the postgres user: start it where it is at home.
      directory: postgresHome(ctx),
      stopSignal: 'INT',
    };
  },
  async ready(ctx) {
    await tcpProbe(ctx.config.postgres.host, ctx.config.postgres.port);
    await psql(ctx, 'postgres', 'SELECT 1');
  },
  /**
   * The application role, a template database holding the extensions only a superuser may create,
   * and the application database made from it. Tests make throw-away databases from the same
   * template (the role may CREATEDB in this development stack).
   */
  async afterReady(ctx) {
    const { user, password, database } = ctx.config.postgres;
    await psql(
      ctx,
      'postgres',
      `DO $$ BEGIN
         IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${quoteLiteral(user)}) THEN
           CREATE ROLE ${quoteIdent(user)} LOGIN CREATEDB PASSWORD ${quoteLiteral(password)};
         END IF;
       END $$;`,
    );
    // Tests drop their scratch databases WITH (FORCE); an autovacuum worker that happens to be in one has
    // no role a non-superuser belongs to, and only pg_signal_backend lets the drop end it.
    await psql(ctx, 'postgres', `GRANT pg_signal_backend TO ${quoteIdent(user)}`);
    const exists = async (db: string) =>
      (
        await psql(ctx, 'postgres', `SELECT 1 FROM pg_database WHERE datname = ${quoteLiteral(db)}`)
      ).trim() === '1';
    if (!(await exists(TEMPLATE))) {
      await psql(ctx, 'postgres', `CREATE DATABASE ${quoteIdent(TEMPLATE)} OWNER ${quoteIdent(user)}`);
      await psql(
        ctx,
        TEMPLATE,
        `CREATE SCHEMA IF NOT EXISTS partman AUTHORIZATION ${quoteIdent(user)};
         CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;
         GRANT ALL ON ALL TABLES IN SCHEMA partman TO ${quoteIdent(user)};
         GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA partman TO ${quoteIdent(user)};
         GRANT EXECUTE ON ALL PROCEDURES IN SCHEMA partman TO ${quoteIdent(user)};`,
      );
      await psql(ctx, 'postgres', `ALTER DATABASE ${quoteIdent(TEMPLATE)} WITH IS_TEMPLATE true`);
    }
    if (!(await exists(database))) {
      await psql(
        ctx,
        'postgres',
        `CREATE DATABASE ${quoteIdent(database)} TEMPLATE ${quoteIdent(TEMPLATE)} OWNER ${quoteIdent(user)}`,
      );
    }
  },
};
