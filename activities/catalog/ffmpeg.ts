import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
/** The command line that runs `binary` so that it dies with this process (where the OS allows). */
const tiedToWorker = (binary: string, args: string[]): [string, string[]] =>
  SETPRIV ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', binary, ...args]] : [binary, args];

/**
 * Runs Debian's ffmpeg (or ffprobe) as a child process. Progress comes from `-progress pipe:1`
 * (out_time_us), CPU time from `-benchmark`. An abort signal (activity cancellation, worker shutdown)
 * kills the process. If the worker itself dies (kill -9), ffmpeg would go on (it ignores SIGPIPE), so it
 * is started through util-linux's `setpriv --pdeathsig SIGKILL`: the kernel kills it with its parent.
 */
export interface FfmpegRun {
  code: number | null;
  /** The last lines of stderr (errors, filter summaries), bounded. */
  stderr: string;
  /** user + system CPU time of the process, from -benchmark. */
  cpuMs: number;
  wallMs: number;
  /** Media time reached, from the last progress report. */
  outTimeMs: number;
}

const STDERR_LIMIT = 256 * 1024;

export class FfmpegAborted extends Error {
  constructor() {
    super('ffmpeg was stopped');
    this.name = 'FfmpegAborted';
  }
}

export function runFfmpeg(
  args: string[],
  opts: { signal?: AbortSignal; onProgress?: (outTimeMs: number) => void; binary?: string } = {},
): Promise<FfmpegRun> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new FfmpegAborted());
    const child = spawn(
      ...tiedToWorker(opts.binary ?? 'ffmpeg', [
        '-hide_banner',
        '-nostdin',
        '-nostats',
        // Every line tagged with its level: errors are told apart, and -benchmark's CPU line (info) is kept.
        '-loglevel',
        'level+info',
        '-benchmark',
        '-progress',
        'pipe:1',
        ...args,
      ]),
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    let outTimeMs = 0;
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_LIMIT);
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('out_time_us=')) {
        const us = Number(line.slice('out_time_us='.length));
        if (Number.isFinite(us) && us >= 0) {
          outTimeMs = Math.floor(us / 1000);
          opts.onProgress?.(outTimeMs);
        }
      }
    });
    const abort = () => child.kill('SIGKILL');
    opts.signal?.addEventListener('abort', abort, { once: true });
    child.once('error', (err) => {
      opts.signal?.removeEventListener('abort', abort);
      reject(err);
    });
    child.once('close', (code) => {
      opts.signal?.removeEventListener('abort', abort);
      if (opts.signal?.aborted) return reject(new FfmpegAborted());
      const bench = /bench: utime=([\d.]+)s stime=([\d.]+)s/.exec(stderr);
      const cpuMs = bench ? Math.round((Number(bench[1]) + Number(bench[2])) * 1000) : 0;
      resolve({ code, stderr, cpuMs, wallMs: Date.now() - started, outTimeMs });
    });
  });
}

/** The first error ffmpeg logged, without its "[codec @ 0x…] [error]" prefixes. */
export function ffmpegError(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim());
  const line =
    lines.find((l) => /\[(error|fatal|panic)\]/.test(l)) ??
    lines.filter((l) => l && !l.includes('bench:')).at(-1) ??
    'unknown error';
  return line
    .replace(/^(\[[^\]]*@ 0x[0-9a-f]+\]\s*)?\[(error|fatal|panic|warning|info)\]\s*/, '')
    .slice(0, 200);
}

/** ffprobe's JSON answer for a file's first video stream (cover art): width and height. */
export function probeImage(
  file: string,
  signal?: AbortSignal,
): Promise<{ width: number; height: number } | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'ffprobe',
      ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'json', file],
      { stdio: ['ignore', 'pipe', 'ignore'], signal },
    );
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (out += c));
    child.once('error', reject);
    child.once('close', () => {
      try {
        const stream = (JSON.parse(out) as { streams?: { width?: number; height?: number }[] }).streams?.[0];
        resolve(stream?.width && stream.height ? { width: stream.width, height: stream.height } : null);
      } catch {
        resolve(null);
      }
    });
  });
}
