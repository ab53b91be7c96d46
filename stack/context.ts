import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../lib/config';

/** Where things live: the work tree, its git-ignored state folder, and a cache outside the tree. */
export interface StackContext {
  root: string;
  state: string;
  data: string;
  logs: string;
  cache: string;
  cacheBin: string;
  config: Config;
}

export function stackContext(env: NodeJS.ProcessEnv = process.env): StackContext {
  const root = path.resolve(__dirname, '..');
  const state = path.resolve(env.CADENZA_STATE_DIR ?? path.join(root, '.stack'));
  const cache = path.resolve(
    env.CADENZA_CACHE_DIR ?? path.join(env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'cadenza'),
  );
  const ctx: StackContext = {
    root,
    state,
    data: path.join(state, 'data'),
    logs: path.join(state, 'logs'),
    cache,
    cacheBin: path.join(cache, 'bin'),
    config: loadConfig(env),
  };
  // run/ holds supervisord's socket and pid file.
  for (const dir of [ctx.data, ctx.logs, ctx.cacheBin, path.join(state, 'run')])
    mkdirSync(dir, { recursive: true });
  return ctx;
}

/** The launcher the time-skipping TestWorkflowEnvironment runs (existing-path). */
export function testServerLauncher(ctx: Pick<StackContext, 'cacheBin'>): string {
  return path.join(ctx.cacheBin, 'temporal-test-server');
}

export class StackError extends Error {
  constructor(
    readonly service: string,
    message: string,
    readonly hint?: string,
  ) {
    super(`[${service}] ${message}${hint ? `\n  → ${hint}` : ''}`);
    this.name = 'StackError';
  }
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Output goes here (appended); otherwise it is captured and shown only on failure. */
  logFile?: string;
  input?: string;
}

/** Runs a command to completion; a failure names the service and points at its output. */
export function run(service: string, cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    const log = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
    const collect = (b: Buffer) => {
      chunks.push(b);
      log?.write(b);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    if (child.stdin) {
      child.stdin.on('error', () => undefined); // a child that exits early closes its stdin: not our error
      child.stdin.end(opts.input);
    }
    child.on('error', (err) =>
      reject(
        new StackError(service, `could not run ${cmd}: ${err.message}`, `is ${cmd} installed and on PATH?`),
      ),
    );
    child.on('close', (code) => {
      log?.end();
      const out = Buffer.concat(chunks).toString('utf8');
      if (code === 0) return resolve(out);
      const tail = out.trim().split('\n').slice(-15).join('\n    ');
      reject(
        new StackError(
          service,
          `${cmd} ${args.join(' ')} exited with ${code}:\n    ${tail}`,
          opts.logFile ? `full output in ${opts.logFile}` : undefined,
        ),
      );
    });
  });
}

export function exists(p: string): boolean {
  return existsSync(p);
}
