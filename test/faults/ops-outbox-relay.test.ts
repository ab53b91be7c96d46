import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { NotificationSandboxControl } from '../../lib/clients/notifications';
import { createPostgresPool } from '../../lib/clients/postgres';
import type { Config } from '../../lib/config';
import { migratePostgres } from '../../sql/migrate/postgres';
import { scratchDatabases } from '../../stack/scratch';
import { readOpsState } from '../../workers/ops-metrics';
import { idempotencyKeyOf } from '../../workers/outbox/relay';
import { testConfig } from '../helpers/env';

/**
 * The outbox relay as a process against a notification sandbox process of its own (a free port, its own
 * database): every message reaches the provider exactly once across a kill -9 of the relay, the provider
 * failing every request, and the provider killed outright; a message the provider keeps refusing is
 * dead-lettered after its attempts.
 */
const root = path.join(__dirname, '..', '..');
const MESSAGES = 300;
const Count = z.object({ n: z.number() });

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** Its own process group: tsx runs the program in a child, and kill -9 must hit both. */
function start(program: string, env: Record<string, string>): ChildProcess {
  return spawn(path.join(root, 'node_modules', '.bin', 'tsx'), [path.join(root, program)], {
    cwd: root,
    env: { ...process.env, CADENZA_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
}

async function kill9(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  try {
    process.kill(-(p.pid as number), 'SIGKILL');
  } catch {
    // already gone
  }
  await exited;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('outbox relay: exactly once to the notification provider', () => {
  let db: Awaited<ReturnType<typeof scratchDatabases>>;
  let cfg: Config;
  let pool: DatabasePool;
  let sandbox: ChildProcess | undefined;
  let relay: ChildProcess | undefined;
  let control: NotificationSandboxControl;
  let sandboxEnv: Record<string, string>;
  let relayEnv: Record<string, string>;
  let relayPort: number;
  let users: string[];

  const published = () =>
    pool.oneFirst(
      sql.type(Count)`SELECT count(*)::int AS n FROM outbox_messages WHERE published_at IS NOT NULL`,
    );
  const startSandbox = async () => {
    sandbox = start('sandbox/notifications/main.ts', sandboxEnv);
    await until(
      'the sandbox',
      async () =>
        (await fetch(`${sandboxEnv.CADENZA_NOTIFICATIONS_URL}/healthz`).catch(() => null))?.ok === true,
    );
  };
  const startRelay = async (extra: Record<string, string> = {}) => {
    relay = start('workers/outbox-relay.ts', { ...relayEnv, ...extra });
    await until(
      'the relay',
      async () => (await fetch(`http://127.0.0.1:${relayPort}/healthz`).catch(() => null))?.ok === true,
    );
  };
  const enqueue = async (n: number, topic = 'subscription.renewed') => {
    const keys = Array.from({ length: n }, () => `sub-${randomUUID()}:1`);
    await pool.query(sql.unsafe`
      INSERT INTO outbox_messages (message_key, user_id, topic, payload)
      SELECT k, (${sql.array(users, 'uuid')})[1 + (ord % ${users.length})], ${topic}, jsonb_build_object('n', ord)
      FROM unnest(${sql.array(keys, 'text')}) WITH ORDINALITY AS m(k, ord)`);
    return keys;
  };

  beforeAll(async () => {
    db = await scratchDatabases(testConfig(), { clickhouse: false });
    cfg = db.config;
    await migratePostgres(cfg.postgres);
    pool = await createPostgresPool(cfg.postgres, 4);
    users = [
      ...(await pool.anyFirst(sql.type(z.object({ id: z.string() }))`
      INSERT INTO users (email, display_name, country, language)
      SELECT 'relay-' || g || '@example.test', 'Relay ' || g, 'DE', 'de' FROM generate_series(1, 5) g
      RETURNING user_id::text AS id`)),
    ];
    const sandboxPort = await freePort();
    relayPort = await freePort();
    const url = `http://127.0.0.1:${sandboxPort}`;
    sandboxEnv = {
      CADENZA_NOTIFICATIONS_URL: url,
      CADENZA_NOTIFICATIONS_PG_DATABASE: `${cfg.postgres.database}_notifications`,
    };
    relayEnv = {
      CADENZA_PG_DATABASE: cfg.postgres.database,
      CADENZA_NOTIFICATIONS_URL: url,
      CADENZA_NOTIFICATIONS_TIMEOUT_MS: '2000',
      CADENZA_RELAY_HEALTH_PORT: String(relayPort),
      CADENZA_OUTBOX_BATCH: '10',
      CADENZA_OUTBOX_CONCURRENCY: '4',
      CADENZA_OUTBOX_POLL_MS: '50',
      CADENZA_OUTBOX_LEASE_SECONDS: '2',
      CADENZA_OUTBOX_MAX_ATTEMPTS: '30',
    };
    control = new NotificationSandboxControl(url);
    await startSandbox();
  }, 120_000);

  afterAll(async () => {
    await kill9(relay);
    await kill9(sandbox);
    await pool?.end();
    const admin = await createPostgresPool(testConfig().postgres, 1);
    await admin.query(
      sql.unsafe`DROP DATABASE IF EXISTS ${sql.identifier([sandboxEnv.CADENZA_NOTIFICATIONS_PG_DATABASE as string])} WITH (FORCE)`,
    );
    await admin.end();
    await db?.drop();
  });

  it('delivers each message once across a kill -9 of the relay, a failing provider and a dead one', async () => {
    // Slow answers, so the kill lands while a batch is in flight.
    await control.settings({ latencyMs: 15, failureRate: 0 });
    const keys = await enqueue(MESSAGES);
    await startRelay();

    await until('a first share delivered', async () => (await published()) >= MESSAGES / 5);
    await kill9(relay);
    await startRelay();

    await until('two fifths delivered', async () => (await published()) >= (2 * MESSAGES) / 5);
    await control.settings({ failureRate: 1 }); // every request refused for a while
    await sleep(1500);
    await control.settings({ failureRate: 0 });

    await until('three fifths delivered', async () => (await published()) >= (3 * MESSAGES) / 5);
    await kill9(sandbox); // the provider gone: connections refused
    await sleep(1500);
    await startSandbox();

    await until('every message delivered', async () => (await published()) === MESSAGES, 120_000);
    const recorded = (await control.list()).data;
    expect(recorded).toHaveLength(MESSAGES);
    expect(recorded.map((r) => r.idempotency_key).sort()).toEqual(keys.map(idempotencyKeyOf).sort());
    const summary = await control.summary();
    expect(summary.notifications).toBe(MESSAGES);
    // At least once on the wire: the ones in flight at the kills were sent again, and made nothing new.
    expect(summary.deliveries).toBeGreaterThanOrEqual(MESSAGES);
    const state = await readOpsState(pool);
    expect(state.outbox).toEqual({ oldest: 0, undelivered: 0, dead: 0 });
    const retried = await pool.oneFirst(sql.type(Count)`
      SELECT count(*)::int AS n FROM outbox_messages WHERE attempts > 1`);
    expect(retried).toBeGreaterThan(0);
  }, 240_000);

  it('dead-letters a message the provider keeps refusing, after its attempts, and counts it', async () => {
    await kill9(relay);
    await control.settings({ latencyMs: 0, failureRate: 1 });
    const [key] = await enqueue(1, 'payment.failed');
    await startRelay({ CADENZA_OUTBOX_MAX_ATTEMPTS: '2' });
    const Dead = z.object({ attempts: z.number(), last_error: z.string().nullable(), dead: z.boolean() });
    let row: z.infer<typeof Dead> | null = null;
    await until(
      'the dead letter',
      async () => {
        row = await pool.one(sql.type(Dead)`
          SELECT attempts, last_error, dead_at IS NOT NULL AS dead FROM outbox_messages WHERE message_key = ${key as string}`);
        return row.dead;
      },
      30_000,
    );
    expect(row).toMatchObject({ attempts: 2, dead: true, last_error: expect.stringMatching(/^HTTP 503/) });
    const metrics = await (await fetch(`http://127.0.0.1:${relayPort}/metrics`)).text();
    expect(metrics).toMatch(/^cadenza_outbox_dead_lettered_total 1$/m);
    expect((await readOpsState(pool)).outbox.dead).toBe(1);
    await control.settings({ failureRate: 0 });
  }, 60_000);
});
