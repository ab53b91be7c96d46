import net from 'node:net';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection, WorkflowIdReusePolicy } from '@temporalio/client';
import { defineSearchAttributeKey } from '@temporalio/common';
import { SingleBar } from 'cli-progress';
import pLimit from 'p-limit';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { PlanCatalog } from '../domain/billing/plans';
import type { PlanTerms } from '../domain/billing/terms';
import { createPostgresPool } from '../lib/clients/postgres';
import { config, type Config } from '../lib/config';
import { migratePostgres } from '../sql/migrate/postgres';
import { createPaymentProvider } from '../lib/clients/payments';
import { stackContext } from '../stack/context';
import { scratchDatabases } from '../stack/scratch';
import { DEV_SERVER_TUNING, SEARCH_ATTRIBUTES } from '../stack/services/temporal';
import type { renewalFloor, subscription } from '../workflows';
import { summary } from './report';

/**
 * npm run bench:renewals -- [--subscriptions 10000] [--kills 5] [--lead 0]
 * A renewal storm on the dev server: N subscriptions whose renewals fall due at the same instant
 * (imported subscribers "paid through" one timestamp), served by a real worker process on the billing
 * queue, charging the sandbox provider. Measures the time to settle all and renewals/s, then counts
 * the provider's own records: exactly one successful charge per (subscription, period). Then repeats
 * with N more while killing the worker with -9 `kills` times during the storm. Target: ≥ 50 renewals/s.
 * First, the floor: the same storm of `renewalFloor`, a workflow of a renewal's shape (two local
 * activities, a timer, continue-as-new, the next run's timer) whose activities do nothing, on the same
 * server and worker. Target: renewals ≥ 0.7 × floor. Both storms count a renewal done when its next run
 * has started (visibility), polled the same way.
 * Runs on a fresh dev server of its own (same binary and SQLite settings as the stack's) and a scratch
 * database, both removed afterwards.
 */
const NAMESPACE = 'cadenza-bench';
const root = path.join(__dirname, '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A dev server of the bench's own: the same binary and SQLite settings as the stack's, on a fresh file.
 * A long-lived dev server's database grows with every run it keeps (3 GB here after a day of benches),
 * and SQLite slows with it; a fresh one measures the workflow, not the history of the machine.
 */
async function benchServer(dir: string, port: number): Promise<{ address: string; stop: () => void }> {
  const cli = path.join(stackContext().cacheBin, 'temporal');
  const attrs = Object.entries(SEARCH_ATTRIBUTES).flatMap(([k, v]) => ['--search-attribute', `${k}=${v}`]);
  const log = openSync(path.join(dir, 'temporal.log'), 'a');
  const child = spawn(
    cli,
    ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port)]
      .concat(['--http-port', String(port + 1), '--metrics-port', String(port + 2)])
      .concat([
        '--db-filename',
        path.join(dir, 'temporal.db'),
        '--namespace',
        NAMESPACE,
        '--log-level',
        'warn',
      ])
      .concat(['--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=off', ...attrs])
      .concat(DEV_SERVER_TUNING),
    { stdio: ['ignore', log, log], detached: true },
  );
  const address = `127.0.0.1:${port}`;
  const stop = () => {
    try {
      process.kill(-(child.pid as number), 'SIGTERM');
    } catch {
      // already gone
    }
  };
  for (let i = 0; i < 120; i++) {
    try {
      execFileSync(cli, ['operator', 'cluster', 'health', '--address', address], { stdio: 'ignore' });
      return { address, stop };
    } catch {
      await sleep(500);
    }
  }
  stop();
  throw new Error(`the bench's Temporal dev server did not start; see ${dir}/temporal.log`);
}

/** The billing worker as its own process, so it can be killed with -9 and started again. */
class WorkerProcess {
  private child: ChildProcess | undefined;
  /** Set when the worker exits without being told to: the bench stops and points at its log. */
  died: string | undefined;
  constructor(
    private readonly env: NodeJS.ProcessEnv,
    readonly logFile: string,
  ) {}

  async start(healthPort: number): Promise<void> {
    const log = openSync(this.logFile, 'a');
    const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
    const child = spawn(tsx, [path.join(root, 'workers', 'main.ts')], {
      env: this.env,
      stdio: ['ignore', log, log],
      detached: true, // its own process group: tsx wraps node, and -9 must reach both
    });
    this.child = child;
    child.once('exit', (code, signal) => {
      if (this.child === child)
        this.died = `the bench worker exited (${code ?? signal}); its log ends:\n${tail(this.logFile)}`;
    });
    for (let i = 0; i < 600; i++) {
      const ok = await fetch(`http://127.0.0.1:${healthPort}/healthz`)
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) return;
      await sleep(100);
    }
    throw new Error('the bench worker did not become healthy in 60 s');
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child?.pid) {
      try {
        process.kill(-this.child.pid, signal);
      } catch {
        // already gone
      }
    }
    this.child = undefined;
  }
}

interface Fixture {
  userId: string;
  paymentMethodId: string;
}

/** N users, each with a sandbox test_ok payment method, in the scratch database. */
async function fixtures(pool: DatabasePool, cfg: Config, n: number): Promise<Fixture[]> {
  const provider = createPaymentProvider(cfg.payments);
  const users = await pool.manyFirst(sql.type(z.object({ user_id: z.string() }))`
    INSERT INTO users (email, display_name, country)
    SELECT 'bench-' || gen_random_uuid() || '@example.test', 'Bench Listener', 'SE' FROM generate_series(1, ${n})
    RETURNING user_id`);
  const limit = pLimit(32);
  const tokens = await Promise.all(users.map(() => limit(() => provider.tokenizeTestMethod('test_ok'))));
  const out: Fixture[] = [];
  for (let i = 0; i < users.length; i += 1000) {
    const slice = users.slice(i, i + 1000);
    const ids = await pool.manyFirst(sql.type(z.object({ payment_method_id: z.string() }))`
      INSERT INTO payment_methods (user_id, provider, provider_token)
      SELECT * FROM ${sql.unnest(
        slice.map((u, j) => [u, 'sandbox', (tokens[i + j] as { token: string }).token]),
        ['uuid', 'text', 'text'],
      )}
      RETURNING payment_method_id`);
    slice.forEach((userId, j) => out.push({ userId, paymentMethodId: ids[j] as string }));
  }
  return out;
}

interface StormResult {
  startPerS: number;
  settleS: number;
  renewalsPerS: number;
  succeeded: number;
  maxPerPeriod: number;
  missing: number;
  killsDone: number;
  /** The machine's 1-minute load average when the storm fell due (the machine is shared). */
  loadAtDue: number;
}

interface Deps {
  client: Client;
  pool: DatabasePool;
  sandboxPool: DatabasePool;
  worker: WorkerProcess;
  healthPort: number;
}

const Charged = z.object({ pairs: z.number(), max_per_period: z.number(), succeeded: z.number() });

async function storm(
  name: string,
  deps: Deps,
  people: Fixture[],
  opts: { lead: number; kills: number; killEveryMs: number; floor?: boolean },
): Promise<StormResult> {
  const { client, sandboxPool, worker, healthPort } = deps;
  const n = people.length;
  const workflowType = opts.floor ? 'renewalFloor' : 'subscription';
  const terms = PlanCatalog.builtIn().get('premium-individual') as PlanTerms;
  const ids = people.map(() => randomUUID());
  const userKey = defineSearchAttributeKey('CadenzaUserId', 'KEYWORD');
  const subKey = defineSearchAttributeKey('CadenzaSubscriptionId', 'KEYWORD');
  // Everyone falls due at one instant, far enough ahead for all of them to be started and open.
  const lead = opts.lead || 20 + Math.ceil(n / 80);
  const dueAt = Date.now() + lead * 1000;
  const paidThrough = new Date(dueAt).toISOString();
  const bar = new SingleBar({ format: `${name}: start {bar} {value}/{total}`, clearOnComplete: true });
  bar.start(n, 0);
  const limit = pLimit(64);
  const t0 = Date.now();
  await Promise.all(
    people.map((p, i) =>
      limit(async () => {
        const subscriptionId = ids[i] as string;
        const common = {
          taskQueue: 'billing',
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
          typedSearchAttributes: [
            { key: userKey, value: p.userId },
            { key: subKey, value: subscriptionId },
          ],
        };
        if (opts.floor)
          await client.workflow.start<typeof renewalFloor>('renewalFloor', {
            ...common,
            workflowId: `renewal-floor-${subscriptionId}`,
            args: [{ dueAt }],
          });
        else
          await client.workflow.start<typeof subscription>('subscription', {
            ...common,
            workflowId: `subscription-${subscriptionId}`,
            args: [{ start: { subscriptionId, ...p, plan: terms.plan, terms, paidThrough } }],
          });
        bar.increment();
      }),
    ),
  );
  bar.stop();
  const startPerS = n / ((Date.now() - t0) / 1000);
  // Renewed: its next run has started (continue-as-new after the charge and its write), as visibility says.
  const renewed = async () =>
    (
      await client.workflow.count(
        `WorkflowType = '${workflowType}' AND StartTime >= '${new Date(dueAt).toISOString()}'`,
      )
    ).count;
  if (Date.now() >= dueAt) {
    throw new Error(`${name}: starting took longer than the ${lead} s lead; pass a larger --lead`);
  }
  process.stdout.write(`${name}: ${n} started at ${startPerS.toFixed(0)}/s; all due at ${paidThrough}\n`);
  await sleep(dueAt - Date.now());
  const loadAtDue = loadavg()[0] as number;

  // The storm: poll until every subscription has renewed, killing the worker on the way if asked.
  let killsDone = 0;
  let nextKill = dueAt + opts.killEveryMs;
  let done = 0;
  while (done < n) {
    if (killsDone < opts.kills && Date.now() >= nextKill) {
      worker.kill('SIGKILL');
      killsDone++;
      process.stdout.write(`${name}: kill -9 #${killsDone} at ${done}/${n} renewed\n`);
      await sleep(500);
      await worker.start(healthPort);
      nextKill = Date.now() + opts.killEveryMs;
    }
    await sleep(1000);
    if (worker.died) throw new Error(worker.died);
    done = await renewed();
  }
  const settleS = (Date.now() - dueAt) / 1000;
  const base = { startPerS, settleS, renewalsPerS: n / settleS, killsDone, loadAtDue };
  if (opts.floor) return { ...base, succeeded: 0, maxPerPeriod: 0, missing: 0 };
  // The provider's own records: successful charges per (subscription, period 1).
  const charged = await sandboxPool.one(sql.type(Charged)`
    SELECT count(*)::int AS pairs, coalesce(max(n), 0)::int AS max_per_period, coalesce(sum(n), 0)::int AS succeeded
    FROM (SELECT metadata->>'subscription_id', metadata->>'period', count(*) AS n FROM charges
          WHERE kind = 'charge' AND status = 'succeeded'
            AND metadata->>'subscription_id' = ANY(${sql.array(ids, 'text')})
          GROUP BY 1, 2) per_period`);
  return {
    ...base,
    succeeded: charged.succeeded,
    maxPerPeriod: charged.max_per_period,
    missing: n - charged.pairs,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      subscriptions: { type: 'string', default: '10000' },
      kills: { type: 'string', default: '5' },
      lead: { type: 'string', default: '0' },
    },
  });
  const n = Number(values.subscriptions);
  const kills = Number(values.kills);
  const base = config();
  const tmp = mkdtempSync(path.join(tmpdir(), 'cadenza-bench-'));
  const server = await benchServer(tmp, 7300);
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: NAMESPACE });
  const db = await scratchDatabases(base, { clickhouse: false }); // renewals touch PostgreSQL only
  await migratePostgres(db.config.postgres);
  const pool = await createPostgresPool(db.config.postgres, 4);
  const sandboxPool = await createPostgresPool(
    { ...base.postgres, database: base.payments.sandbox.database },
    2,
  );
  const bundle = path.join(tmp, 'workflow-bundle.js');
  execFileSync(
    path.join(root, 'node_modules', '.bin', 'tsx'),
    [path.join(root, 'scripts', 'build-workflows.ts'), bundle],
    {
      stdio: 'ignore',
    },
  );
  // A port nothing else holds (3011 became the notifications sandbox's).
  const healthPort = await freePort();
  const worker = new WorkerProcess(
    {
      ...process.env,
      CADENZA_TEMPORAL_ADDRESS: server.address,
      CADENZA_TEMPORAL_NAMESPACE: NAMESPACE,
      CADENZA_WORKER_TASK_QUEUES: 'billing',
      CADENZA_PG_DATABASE: db.config.postgres.database,
      CADENZA_WORKER_HEALTH_PORT: String(healthPort),
      CADENZA_WORKER_METRICS_PORT: '9465',
      CADENZA_WORKER_BUNDLE: process.env.CADENZA_WORKER_BUNDLE ?? bundle,
      CADENZA_LOG_LEVEL: 'warn',
    },
    path.join(tmp, 'worker.log'),
  );
  try {
    process.stdout.write(`preparing ${kills ? 2 * n : n} users with sandbox payment methods\n`);
    const people = await fixtures(pool, db.config, kills ? 2 * n : n);
    await worker.start(healthPort);
    const deps = { client, pool, sandboxPool, worker, healthPort };
    const lead = Number(values.lead);
    const floor = await storm('floor', deps, people.slice(0, n), {
      lead,
      kills: 0,
      killEveryMs: 0,
      floor: true,
    });
    process.stdout.write(`floor: settled in ${floor.settleS.toFixed(1)} s\n`);
    const calm = await storm('storm', deps, people.slice(0, n), { lead, kills: 0, killEveryMs: 0 });
    process.stdout.write(`storm: settled in ${calm.settleS.toFixed(1)} s\n`);
    const killEveryMs = Math.max(1500, (calm.settleS * 1000) / (kills + 1));
    const killed = kills
      ? await storm('storm-with-kills', deps, people.slice(n), { lead, kills, killEveryMs })
      : calm;
    const once = (r: StormResult) =>
      r.missing === 0 && r.maxPerPeriod === 1 && r.succeeded === n ? 'yes' : 'no';
    summary('renewals', {
      subscriptions: n,
      floor_per_s: floor.renewalsPerS,
      floor_settle_s: floor.settleS,
      load_1m_at_floor: floor.loadAtDue,
      load_1m_at_storm: calm.loadAtDue,
      start_per_s: calm.startPerS,
      settle_s: calm.settleS,
      renewals_per_s: calm.renewalsPerS,
      exactly_one_charge_each: once(calm),
      charges: calm.succeeded,
      kills: killed.killsDone,
      settle_with_kills_s: killed.settleS,
      renewals_per_s_with_kills: killed.renewalsPerS,
      exactly_one_charge_each_with_kills: once(killed),
      charges_with_kills: killed.succeeded,
      max_charges_per_period: Math.max(calm.maxPerPeriod, killed.maxPerPeriod),
      renewals_over_floor: calm.renewalsPerS / floor.renewalsPerS,
      target_50_per_s: calm.renewalsPerS >= 50 ? 'met' : 'missed',
      target_0_7_of_floor: calm.renewalsPerS >= 0.7 * floor.renewalsPerS ? 'met' : 'missed',
    });
  } finally {
    worker.kill('SIGTERM');
    await Promise.allSettled([pool.end(), sandboxPool.end()]);
    await db.drop();
    await connection.close();
    server.stop(); // its runs go with it: the database was the bench's own
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});

/** The last lines of a log the bench removes with its folder. */
function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A loopback port free at the moment of asking. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
