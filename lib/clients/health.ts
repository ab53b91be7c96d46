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
