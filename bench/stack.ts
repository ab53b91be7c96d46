import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { stackContext } from '../stack/context';
import { processStates } from '../stack/supervisor';
import { summary } from './report';

/**
 * npm run bench:stack -- [--cold] [--idle-seconds 20]
 * Warm: stack down, then `npm run stack -- up` with everything cached (provisioning checks, start,
 * readiness) and from a fresh state folder (initdb, Kafka format, …). Idle resident memory per service.
 * --cold also provisions from nothing into temporary caches (Go module and build caches, a Maven
 * repository, the cadenza cache); Debian packages stay installed (apt is not undone).
 * Targets: warm up ≤ 90 s; whole stack idle ≤ 4 GB.
 */

const root = path.join(__dirname, '..');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
const cli = path.join(root, 'stack', 'cli.ts');

function stack(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { seconds: number; provisionSeconds: number; output: string } {
  const start = Date.now();
  const r = spawnSync(tsx, [cli, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const output = `${r.stdout}${r.stderr}`;
  if (r.status !== 0 && args[0] === 'up') throw new Error(`stack ${args.join(' ')} failed:\n${output}`);
  const provision = /provisioned in ([\d.]+) s/.exec(output);
  return {
    seconds: (Date.now() - start) / 1000,
    provisionSeconds: provision ? Number(provision[1]) : NaN,
    output,
  };
}

/** Resident memory of a process and all its descendants, in MiB. */
function treeRssMiB(pid: number): number {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // the process ended while we looked
    }
  }
  let kib = 0;
  const stackOf = [pid];
  while (stackOf.length) {
    const p = stackOf.pop() as number;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      kib += Number(m?.[1] ?? 0);
    } catch {
      // gone
    }
    stackOf.push(...(children.get(p) ?? []));
  }
  return kib / 1024;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { cold: { type: 'boolean', default: false }, 'idle-seconds': { type: 'string', default: '20' } },
  });
  const results: Record<string, number | string> = {};

  if (values.cold) {
    stack(['down']);
    const tmp = mkdtempSync(path.join(tmpdir(), 'cadenza-cold-'));
    chmodSync(tmp, 0o755);
    const env = {
      CADENZA_CACHE_DIR: path.join(tmp, 'cache'),
      CADENZA_STATE_DIR: path.join(tmp, 'state'),
      GOMODCACHE: path.join(tmp, 'gomod'),
      GOCACHE: path.join(tmp, 'gobuild'),
      MAVEN_OPTS: `-Dmaven.repo.local=${path.join(tmp, 'm2')}`,
    };
    const cold = stack(['up'], env);
    results.cold_provision_s = cold.provisionSeconds;
    results.cold_up_s = cold.seconds;
    stack(['down'], env);
    rmSync(tmp, { recursive: true, force: true });
  }

  stack(['down']);
  const warm = stack(['up']);
  results.warm_provision_s = warm.provisionSeconds;
  results.warm_up_s = warm.seconds;

  // From a fresh state folder (caches warm): initdb, Kafka storage format, first OpenSearch start.
  const freshState = mkdtempSync(path.join(tmpdir(), 'cadenza-state-'));
  chmodSync(freshState, 0o755); // PostgreSQL runs as its own user and must enter the folder
  stack(['down']);
  const fresh = stack(['up'], { CADENZA_STATE_DIR: freshState });
  results.fresh_state_up_s = fresh.seconds;
  stack(['down'], { CADENZA_STATE_DIR: freshState });
  rmSync(freshState, { recursive: true, force: true });

  stack(['up']);
  await new Promise((r) => setTimeout(r, Number(values['idle-seconds']) * 1000));
  const ctx = stackContext();
  let total = 0;
  for (const [name, st] of await processStates(ctx)) {
    const pid = Number(/pid (\d+)/.exec(st.info)?.[1]);
    if (!pid) continue;
    const mib = treeRssMiB(pid);
    results[`rss_${name.replace(/-/g, '_')}_mib`] = Math.round(mib);
    if (!name.startsWith('cadenza-')) total += mib;
  }
  results.rss_stack_total_mib = Math.round(total);
  results.target_warm_up_90s = warm.seconds <= 90 ? 'met' : 'missed';
  results.target_idle_4gb = total <= 4096 ? 'met' : 'missed';
  summary('stack', results);
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
