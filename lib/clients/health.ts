/** Every store client answers the same health question: reachable, and how long it took. */
export interface Health {
  name: string;
  ok: boolean;
  latencyMs: number;
  detail?: string;
}

export async function measureHealth(
  name: string,
  probe: () => Promise<unknown>,
  timeoutMs = 3000,
): Promise<Health> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { name, ok: true, latencyMs: Math.round(performance.now() - start) };
  } catch (err) {
    return {
      name,
      ok: false,
      latencyMs: Math.round(performance.now() - start),
      detail: (err as Error).message,
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Shares one round of checks among callers for `ttlMs`: a readiness probe hit hundreds of times a
 * second must not open hundreds of connections to every store.
 */
export function cachedChecks(run: () => Promise<Health[]>, ttlMs = 1000): () => Promise<Health[]> {
  let last: { at: number; result: Promise<Health[]> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - last.at > ttlMs) last = { at: now, result: run() };
    return last.result;
  };
}
