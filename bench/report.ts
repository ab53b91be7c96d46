import { cpus, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';

/** Every benchmark ends with one summary line of key=value pairs, and says what machine it ran on. */
export function machine(): string {
  const cpu = cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown';
  const os = (() => {
    try {
      return execFileSync('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"']).toString().trim();
    } catch {
      return process.platform;
    }
  })();
  return `${os}, ${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}`;
}

export function summary(name: string, values: Record<string, string | number>): void {
  const pairs = Object.entries(values).map(([k, v]) => `${k}=${typeof v === 'number' ? round(v) : v}`);
  process.stdout.write(`# machine: ${machine()}\n`);
  process.stdout.write(`bench=${name} ${pairs.join(' ')}\n`);
}

const round = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 0));
