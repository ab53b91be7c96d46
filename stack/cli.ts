import { readFileSync, rmSync } from 'node:fs';
import { exists, StackError, stackContext, type StackContext } from './context';
import { portTaken, waitUntil } from './probes';
import { aptInstall } from './provision';
import { appPrograms } from './services/app';
import { postgresHome } from './services/postgres';
import { services as allServices, type ServiceDef } from './services';
import {
  logFile,
  processStates,
  shutdownSupervisor,
  startSupervisor,
  supervisorctl,
  writeSupervisorConf,
  type ProcessState,
} from './supervisor';

const usage = `usage: npm run stack -- <command>
  up [--app] [service ...]
                   provision what is missing, start every service (or the ones named), wait until
                   each is ready (--app also starts the Cadenza worker and API under the same supervisor)
  down             stop everything the stack started
  stop service ... stop the named services (up starts them again), e.g. to free the CPU for a benchmark
  status           one line per service; exits 0 only when all are ready
  logs [service]   the last lines of a service's log (all services without a name)
  reset            down, then delete the state folder (data and logs; the download cache stays)`;

const say = (line: string) => process.stdout.write(`${line}\n`);
// `npm run stack -- status | head` closes the pipe early: not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function provision(ctx: StackContext, services: ServiceDef[]): Promise<void> {
  const started = Date.now();
  const apt = ['supervisor', ...services.flatMap((s) => s.apt ?? [])];
  const installed = await aptInstall(ctx, apt);
  if (installed.length) say(`apt: installed ${installed.join(' ')}`);
  // Go builds are CPU-bound and run one at a time; Maven downloads overlap them.
  const provisionable = services.filter((s) => s.provision);
  const goFirst = provisionable.filter((s) => ['temporal', 'minio'].includes(s.name));
  const rest = provisionable.filter((s) => !goFirst.includes(s));
  await Promise.all([
    (async () => {
      for (const s of goFirst) await s.provision?.(ctx);
    })(),
    (async () => {
      for (const s of rest) await s.provision?.(ctx);
    })(),
  ]);
  for (const s of services) await s.prepare?.(ctx);
  say(`provisioned in ${seconds(Date.now() - started)} (cache: ${ctx.cache})`);
}

const alive = (state: ProcessState | undefined) => state === 'RUNNING' || state === 'STARTING';

async function checkPorts(
  ctx: StackContext,
  services: ServiceDef[],
  states: Map<string, { state: ProcessState }>,
): Promise<void> {
  for (const s of services) {
    if (!s.program || alive(states.get(s.name)?.state)) continue;
    for (const port of s.ports(ctx)) {
      if (await portTaken('127.0.0.1', port)) {
        throw new StackError(
          s.name,
          `port ${port} is already taken by another process`,
          `stop that process (ss -ltnp 'sport = :${port}') or move ${s.name} to another port with its CADENZA_* variable (see README)`,
        );
      }
    }
  }
}

async function waitReady(ctx: StackContext, s: ServiceDef): Promise<void> {
  const started = Date.now();
  let supervisorSays = '';
  const isAlive = async () => {
    if (!s.program) return true;
    const proc = (await processStates(ctx)).get(s.name);
    supervisorSays = proc ? `${proc.state} ${proc.info}` : '';
    return proc?.state !== 'FATAL' && proc?.state !== 'EXITED' && proc?.state !== 'STOPPED';
  };
  const result = await waitUntil(() => s.ready(ctx), s.readyTimeoutMs ?? 60_000, isAlive);
  if (!result.ok) {
    const tail = s.program ? lastLines(logFile(ctx, s.name), 12) : '';
    throw new StackError(
      s.name,
      `${result.reason}${supervisorSays ? `\n    supervisor: ${supervisorSays}` : ''}${tail ? `\n    last lines of ${logFile(ctx, s.name)}:\n    ${tail.replace(/\n/g, '\n    ')}` : ''}`,
      `npm run stack -- logs ${s.name}`,
    );
  }
  await s.afterReady?.(ctx);
  say(`  ${s.name.padEnd(22)} ready in ${seconds(Date.now() - started)}${s.url ? `  ${s.url(ctx)}` : ''}`);
}

function lastLines(file: string, n: number): string {
  if (!exists(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
}

async function up(ctx: StackContext, withApp: boolean, only: string[]): Promise<void> {
  const started = Date.now();
  const unknown = only.filter((n) => !allServices.some((s) => s.name === n));
  if (unknown.length)
    throw new StackError(
      unknown.join(', '),
      'no such service',
      `one of: ${allServices.map((s) => s.name).join(', ')}`,
    );
  const services = only.length ? allServices.filter((s) => only.includes(s.name)) : allServices;
  await provision(ctx, services);
  const states = await processStates(ctx);
  await checkPorts(ctx, services, states);
  // Services already running stay in the supervisor's config when only some are (re)started.
  const supervised = allServices.filter(
    (s) => s.program && (services.includes(s) || alive(states.get(s.name)?.state)),
  );
  const programs = Object.fromEntries(supervised.map((s) => [s.name, s.program!(ctx)]));
  writeSupervisorConf(ctx, programs, appPrograms(ctx));
  await startSupervisor(
    ctx,
    services.filter((s) => s.program).map((s) => s.name),
  );
  const results = await Promise.allSettled(services.map((s) => waitReady(ctx, s)));
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length)
    throw new AggregateError(
      failures.map((f) => f.reason as Error),
      'stack not ready',
    );
  if (withApp) await startApp(ctx);
  say(`stack up in ${seconds(Date.now() - started)}`);
}

/**
 * (Re)starts Cadenza's own processes, so `npm run up` after a change runs the new code (a sink from
 * before a record-format change would not read the API's new records). Each stops gracefully first.
 */
async function startApp(ctx: StackContext): Promise<void> {
  const names = Object.keys(appPrograms(ctx));
  await supervisorctl(ctx, 'restart', ...names).catch(() => undefined);
  const app = Object.entries(appPrograms(ctx));
  for (const [name, p] of app) {
    const result = await waitUntil(p.ready, 60_000, async () =>
      alive((await processStates(ctx)).get(name)?.state),
    );
    if (!result.ok) throw new StackError(name, result.reason, `npm run stack -- logs ${name}`);
    say(`  ${name.padEnd(22)} ready${p.url ? `  ${p.url}` : ''}`);
  }
}

async function status(ctx: StackContext): Promise<boolean> {
  const states = await processStates(ctx);
  let allReady = true;
  for (const s of allServices) {
    const proc = states.get(s.name);
    let line: string;
    try {
      if (s.program && !alive(proc?.state))
        throw new Error(proc ? `${proc.state.toLowerCase()} ${proc.info}` : 'not started');
      await s.ready(ctx);
      line = `ready      ${proc?.info ?? 'tool installed'}${s.url ? `  ${s.url(ctx)}` : ''}`;
    } catch (err) {
      allReady = false;
      line = `NOT READY  ${(err as Error).message.split('\n')[0]}`;
    }
    say(`${s.name.padEnd(22)} ${line}`);
  }
  for (const [name, p] of Object.entries(appPrograms(ctx))) {
    const proc = states.get(name);
    say(
      `${name.padEnd(22)} ${alive(proc?.state) ? `running    ${proc?.info ?? ''}${p.url ? `  ${p.url}` : ''}` : 'stopped    (npm run up starts it)'}`,
    );
  }
  return allReady;
}

function logs(ctx: StackContext, service: string | undefined): void {
  const known = [
    ...allServices.filter((s) => s.program).map((s) => s.name),
    ...Object.keys(appPrograms(ctx)),
  ];
  if (service && !known.includes(service))
    throw new StackError(service, 'no such service', `one of: ${known.join(', ')}`);
  for (const name of service ? [service] : known) {
    say(`==> ${logFile(ctx, name)} <==`);
    say(lastLines(logFile(ctx, name), service ? 200 : 20) || '(empty)');
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const ctx = stackContext();
  switch (command) {
    case 'up':
      await up(
        ctx,
        rest.includes('--app'),
        rest.filter((a) => !a.startsWith('--')),
      );
      return (await status(ctx)) ? 0 : 1;
    case 'down':
      await shutdownSupervisor(ctx);
      say('stack stopped');
      return 0;
    case 'stop': {
      const known = [
        ...allServices.filter((s) => s.program).map((s) => s.name),
        ...Object.keys(appPrograms(ctx)),
      ];
      const unknown = rest.filter((n) => !known.includes(n));
      if (!rest.length || unknown.length) {
        say(
          `name the services to stop (unknown: ${unknown.join(', ') || 'none given'}); known: ${known.join(', ')}`,
        );
        return 2;
      }
      say(await supervisorctl(ctx, 'stop', ...rest));
      return 0;
    }
    case 'status':
      return (await status(ctx)) ? 0 : 1;
    case 'logs':
      logs(ctx, rest[0]);
      return 0;
    case 'reset':
      await shutdownSupervisor(ctx);
      rmSync(ctx.state, { recursive: true, force: true });
      rmSync(postgresHome(ctx), { recursive: true, force: true }); // outside the state folder when postgres cannot enter it
      say(`removed ${ctx.state}`);
      return 0;
    default:
      say(usage);
      return command ? 2 : 0;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const errors = err instanceof AggregateError ? err.errors : [err];
    for (const e of errors) process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
