import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { exists, run, StackError, type StackContext } from './context';
import type { Program } from './services/types';

/**
 * The native stack runs under Debian's supervisord: restarts, log files, clean stops.
 * Readiness is ours (probes.ts), since supervisord only knows whether a process is alive.
 */

const files = (ctx: StackContext) => ({
  conf: path.join(ctx.state, 'supervisord.conf'),
  sock: path.join(ctx.state, 'run', 'supervisor.sock'),
  pid: path.join(ctx.state, 'run', 'supervisord.pid'),
});

export const logFile = (ctx: StackContext, name: string) => path.join(ctx.logs, `${name}.log`);

function section(ctx: StackContext, name: string, p: Program, autostart = true): string {
  const env = Object.entries(p.environment ?? {}).map(
    ([k, v]) => `${k}="${v.replace(/"/g, '\\"').replace(/%/g, '%%')}"`,
  );
  return [
    `[program:${name}]`,
    `command=${p.command.replace(/%/g, '%%')}`,
    `directory=${p.directory ?? ctx.root}`,
    p.user ? `user=${p.user}` : '',
    env.length ? `environment=${env.join(',')}` : '',
    `autostart=${autostart}`,
    'autorestart=true',
    'startsecs=2',
    'startretries=3',
    `stopsignal=${p.stopSignal ?? 'TERM'}`,
    `stopwaitsecs=${p.stopWaitSecs ?? 30}`,
    'stopasgroup=true',
    'killasgroup=true',
    'redirect_stderr=true',
    `stdout_logfile=${logFile(ctx, name)}`,
    'stdout_logfile_maxbytes=20MB',
    'stdout_logfile_backups=2',
    '',
  ]
    .filter((l) => l !== '')
    .join('\n');
}

/** Stack services start with supervisord; the app's processes are in the same file but start on demand. */
export function writeSupervisorConf(
  ctx: StackContext,
  programs: Record<string, Program>,
  onDemand: Record<string, Program> = {},
): void {
  const f = files(ctx);
  const head = [
    '[unix_http_server]',
    `file=${f.sock}`,
    'chmod=0700',
    '',
    '[supervisord]',
    `logfile=${path.join(ctx.logs, 'supervisord.log')}`,
    `pidfile=${f.pid}`,
    `childlogdir=${ctx.logs}`,
    'logfile_maxbytes=10MB',
    '',
    '[rpcinterface:supervisor]',
    'supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface',
    '',
    '[supervisorctl]',
    `serverurl=unix://${f.sock}`,
    '',
  ].join('\n');
  const body = [
    ...Object.entries(programs).map(([name, p]) => section(ctx, name, p)),
    ...Object.entries(onDemand).map(([name, p]) => section(ctx, name, p, false)),
  ];
  writeFileSync(f.conf, `${head}\n${body.join('\n')}`);
}

export async function supervisorctl(ctx: StackContext, ...args: string[]): Promise<string> {
  return run('supervisor', 'supervisorctl', ['-c', files(ctx).conf, ...args]);
}

export async function supervisorRunning(ctx: StackContext): Promise<boolean> {
  if (!exists(files(ctx).conf) || !exists(files(ctx).sock)) return false;
  try {
    await supervisorctl(ctx, 'pid');
    return true;
  } catch {
    return false;
  }
}

/** Starts supervisord, or makes the running one pick up a changed config and (re)start the named programs. */
export async function startSupervisor(ctx: StackContext, names: string[]): Promise<void> {
  if (await supervisorRunning(ctx)) {
    await supervisorctl(ctx, 'update');
    // A program that gave up (FATAL) or was stopped is started again; running ones are left alone.
    if (names.length) await supervisorctl(ctx, 'start', ...names).catch(() => undefined);
    return;
  }
  await run('supervisor', 'supervisord', ['-c', files(ctx).conf]).catch((err: Error) => {
    throw new StackError('supervisor', err.message, 'is supervisor installed? (apt-get install supervisor)');
  });
}

export type ProcessState =
  'RUNNING' | 'STARTING' | 'BACKOFF' | 'STOPPED' | 'EXITED' | 'FATAL' | 'STOPPING' | 'UNKNOWN' | 'ABSENT';

/** Process states by program name (empty when supervisord is not running). */
export async function processStates(
  ctx: StackContext,
): Promise<Map<string, { state: ProcessState; info: string }>> {
  const states = new Map<string, { state: ProcessState; info: string }>();
  if (!(await supervisorRunning(ctx))) return states;
  // supervisorctl status exits non-zero when any program is not running; its output is still the table.
  const out = await supervisorctl(ctx, 'status').catch((err: Error) => err.message);
  for (const line of out.split('\n')) {
    const m = /^\s*(\S+)\s+(RUNNING|STARTING|BACKOFF|STOPPED|EXITED|FATAL|STOPPING|UNKNOWN)\s*(.*)$/.exec(
      line,
    );
    if (m) states.set(m[1] as string, { state: m[2] as ProcessState, info: (m[3] ?? '').trim() });
  }
  return states;
}

/** Stops every program and supervisord itself; returns once supervisord has exited (its ports are free). */
export async function shutdownSupervisor(ctx: StackContext): Promise<void> {
  const pidFile = files(ctx).pid;
  const pid = exists(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : NaN;
  const alive = () => {
    try {
      return Number.isInteger(pid) && pid > 0 && process.kill(pid, 0);
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  // Fails harmlessly when a shutdown is already under way; either way we wait for the exit.
  await supervisorctl(ctx, 'shutdown').catch(() => undefined);
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && alive()) await new Promise((r) => setTimeout(r, 300));
  if (alive())
    throw new StackError(
      'supervisor',
      `supervisord (pid ${pid}) did not exit within 2 minutes`,
      `kill ${pid}`,
    );
}
