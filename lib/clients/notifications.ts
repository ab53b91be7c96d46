/**
 * The client of the notification provider the outbox relay delivers to (sandbox/notifications here).
 * A delivery is a result, not an exception: `delivered` (2xx: made now, or made before under this key),
 * `transient` (5xx, 408, 429, a timeout, a refused connection — try again later, same key) or `rejected`
 * (any other 4xx: the message or the key is wrong, and retrying cannot help).
 */

export interface Notification {
  /** Stable per message: a repeat is answered with the notification made the first time. */
  idempotencyKey: string;
  topic: string;
  recipient: { userId: string; email: string; language: string };
  data: Record<string, unknown>;
}

export type DeliveryResult =
  | { outcome: 'delivered'; id: string }
  | { outcome: 'transient'; reason: string }
  | { outcome: 'rejected'; reason: string };

export class NotificationClient {
  constructor(private readonly options: { url: string; timeoutMs: number }) {}

  async send(n: Notification): Promise<DeliveryResult> {
    let res: Response;
    try {
      res = await fetch(`${this.options.url}/v1/notifications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': n.idempotencyKey },
        body: JSON.stringify({ topic: n.topic, recipient: n.recipient, data: n.data }),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      return { outcome: 'transient', reason: `no answer: ${cause ?? (err as Error).name}` };
    }
    const text = await res.text().catch(() => '');
    if (res.ok) {
      const id = (JSON.parse(text || '{}') as { id?: string }).id ?? '';
      return { outcome: 'delivered', id };
    }
    const reason = `HTTP ${res.status}: ${text.slice(0, 300)}`;
    if (res.status >= 500 || res.status === 408 || res.status === 429)
      return { outcome: 'transient', reason };
    return { outcome: 'rejected', reason };
  }
}

/** The sandbox's test-only endpoints: what it recorded, and its failure knobs. */
export class NotificationSandboxControl {
  constructor(private readonly url: string) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as T;
  }

  summary() {
    return this.call<{ notifications: number; deliveries: number; duplicates: number }>(
      'GET',
      '/v1/notifications/summary',
    );
  }
  list(limit = 10_000) {
    return this.call<{
      data: { idempotency_key: string; topic: string; user_id: string; deliveries: number }[];
    }>('GET', `/v1/notifications?limit=${limit}`);
  }
  settings(s: { latencyMs?: number; failureRate?: number }) {
    return this.call('PUT', '/_sandbox/settings', s);
  }
  reset() {
    return this.call('POST', '/_sandbox/reset');
  }
}
