import net from 'node:net';

/** Readiness probes: each resolves when the service answers, and throws saying what it saw otherwise. */

export async function httpProbe(
  url: string,
  accept: (status: number, body: string) => boolean = (s) => s < 400,
): Promise<void> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  const body = await res.text();
  if (!accept(res.status, body)) throw new Error(`${url} answered ${res.status}: ${body.slice(0, 200)}`);
}

export function tcpProbe(host: string, port: number, timeoutMs = 1000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no answer on ${host}:${port}`)));
    socket.once('error', fail);
    socket.once('connect', () => {
      socket.end();
      resolve();
    });
  });
}

/** True when something else already listens on host:port. */
export async function portTaken(host: string, port: number): Promise<boolean> {
  try {
    await tcpProbe(host, port, 500);
    return true;
  } catch {
    return false;
  }
}

export async function waitUntil(
  probe: () => Promise<void>,
  timeoutMs: number,
  isAlive: () => Promise<boolean> = async () => true,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  const deadline = Date.now() + timeoutMs;
  let last = 'not probed yet';
  while (Date.now() < deadline) {
    try {
      await probe();
      return { ok: true };
    } catch (err) {
      last = (err as Error).message;
    }
    if (!(await isAlive())) return { ok: false, reason: `the process exited (${last})` };
    await new Promise((r) => setTimeout(r, 500));
  }
  return { ok: false, reason: `not ready after ${Math.round(timeoutMs / 1000)} s: ${last}` };
}
