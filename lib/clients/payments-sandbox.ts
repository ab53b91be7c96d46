import { z } from 'zod';
import {
  ProviderRequestError,
  TransientProviderError,
  type ChargeRequest,
  type ChargeResult,
  type PaymentProvider,
  type RefundRequest,
  type RefundResult,
  type TestMethod,
  type TokenizedMethod,
} from '../../domain/billing/payments';

/**
 * The client of the sandbox payment provider (sandbox/payments). Status codes map onto the interface:
 * 200 → succeeded; 402 → declined (soft or hard); 5xx, 429, a timeout, a refused connection or a key
 * still in flight → TransientProviderError (retry with the same key); any other 4xx → ProviderRequestError.
 */

const ErrorBody = z.object({
  error: z.object({ code: z.string().optional(), message: z.string().optional() }).passthrough(),
});
const Succeeded = z.object({ id: z.string(), status: z.literal('succeeded') });
const Declined = z.object({
  id: z.string(),
  status: z.literal('declined'),
  error: z.object({ code: z.string(), decline_kind: z.enum(['soft', 'hard']) }),
});
const Method = z.object({
  id: z.string(),
  brand: z.string(),
  last4: z.string(),
  exp_month: z.number(),
  exp_year: z.number(),
});
const Refund = z.object({ id: z.string(), amount: z.number() });

/** A body that is not JSON (a proxy's error page, say) is kept as text for the error message. */
function parseJson(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    return text;
  }
}

export interface SandboxProviderOptions {
  url: string;
  timeoutMs: number;
}

interface Answer {
  status: number;
  body: unknown;
}

export class SandboxProvider implements PaymentProvider {
  readonly name = 'sandbox';

  constructor(private readonly options: SandboxProviderOptions) {}

  async tokenizeTestMethod(method: TestMethod): Promise<TokenizedMethod> {
    const { body } = this.expect(await this.post('/v1/payment_methods', { test_method: method }), [201]);
    const m = this.read(Method, body);
    return { token: m.id, brand: m.brand, last4: m.last4, expMonth: m.exp_month, expYear: m.exp_year };
  }

  async authorize(req: Omit<ChargeRequest, 'amountMinor'>): Promise<ChargeResult> {
    const answer = await this.post(
      '/v1/authorizations',
      { payment_method: req.token, currency: req.currency, metadata: req.metadata },
      req.idempotencyKey,
    );
    return this.chargeResult(answer);
  }

  async charge(req: ChargeRequest): Promise<ChargeResult> {
    const answer = await this.post(
      '/v1/charges',
      { payment_method: req.token, amount: req.amountMinor, currency: req.currency, metadata: req.metadata },
      req.idempotencyKey,
    );
    return this.chargeResult(answer);
  }

  async refund(req: RefundRequest): Promise<RefundResult> {
    const answer = await this.post(
      '/v1/refunds',
      { charge: req.chargeReference, amount: req.amountMinor },
      req.idempotencyKey,
    );
    const r = this.read(Refund, this.expect(answer, [200]).body);
    return { reference: r.id, amountMinor: r.amount };
  }

  private chargeResult(answer: Answer): ChargeResult {
    const { status, body } = this.expect(answer, [200, 402]);
    if (status === 200) return { outcome: 'succeeded', reference: this.read(Succeeded, body).id };
    const d = this.read(Declined, body);
    return { outcome: 'declined', reference: d.id, code: d.error.code, retry: d.error.decline_kind };
  }

  /** Anything but the expected statuses becomes the error the caller should act on. */
  private expect(answer: Answer, ok: number[]): Answer {
    if (ok.includes(answer.status)) return answer;
    const parsed = ErrorBody.safeParse(answer.body);
    const code = parsed.success
      ? (parsed.data.error.code ?? `http_${answer.status}`)
      : `http_${answer.status}`;
    const message = `sandbox answered ${answer.status} ${code}${parsed.success && parsed.data.error.message ? `: ${parsed.data.error.message}` : ''}`;
    if (answer.status >= 500 || answer.status === 429 || code === 'idempotency_key_in_flight')
      throw new TransientProviderError(message);
    throw new ProviderRequestError(code, message);
  }

  private read<S extends z.ZodTypeAny>(schema: S, body: unknown): z.output<S> {
    const parsed = schema.safeParse(body);
    if (!parsed.success)
      throw new ProviderRequestError(
        'invalid_response',
        `unexpected sandbox answer: ${JSON.stringify(body)}`,
      );
    return parsed.data as z.output<S>;
  }

  private async post(path: string, body: unknown, idempotencyKey?: string): Promise<Answer> {
    const url = new URL(path, this.options.url);
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
        },
        body: JSON.stringify(body),
        // One deadline for the whole exchange, body included.
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      return { status: res.status, body: parseJson(await res.text()) };
    } catch (err) {
      // The request may or may not have reached the provider: only a retry with the same key can tell.
      const reason =
        (err as Error).name === 'TimeoutError'
          ? `no answer within ${this.options.timeoutMs} ms`
          : (err as Error).message;
      throw new TransientProviderError(`sandbox ${path}: ${reason}`);
    }
  }
}

export interface SandboxSettings {
  latencyMs: number;
  failureRate: number;
  hangMs: number;
}

export interface SandboxChargeRecord {
  id: string;
  status: 'succeeded' | 'declined';
  amount: number;
  amount_refunded: number;
  currency: string;
  payment_method: string;
  idempotency_key: string;
  decline_code: string | null;
  attempts: number;
  metadata: Record<string, string>;
  created: number;
}

export interface SandboxSummary {
  charges: number;
  succeeded: number;
  declined: number;
  /** (subscription_id, period) pairs with more than one successful charge: 0 when billing is right. */
  duplicates: number;
  maxPerPeriod: number;
}

/** The sandbox's own inspection and control endpoints, for tests and benches (no real provider has them). */
export class SandboxControl {
  constructor(private readonly url: string) {}

  settings(): Promise<SandboxSettings> {
    return this.call('GET', '/_sandbox/settings');
  }

  updateSettings(change: Partial<SandboxSettings>): Promise<SandboxSettings> {
    return this.call('PUT', '/_sandbox/settings', change);
  }

  /** Deletes every payment method, charge and refund. */
  reset(): Promise<void> {
    return this.call('POST', '/_sandbox/reset', {});
  }

  async charges(filter: { subscriptionId?: string; limit?: number } = {}): Promise<SandboxChargeRecord[]> {
    const query = new URLSearchParams();
    if (filter.subscriptionId) query.set('subscription_id', filter.subscriptionId);
    if (filter.limit) query.set('limit', String(filter.limit));
    return (await this.call<{ data: SandboxChargeRecord[] }>('GET', `/v1/charges?${query}`)).data;
  }

  summary(filter: { subscriptionId?: string } = {}): Promise<SandboxSummary> {
    const query = filter.subscriptionId
      ? `?subscription_id=${encodeURIComponent(filter.subscriptionId)}`
      : '';
    return this.call('GET', `/v1/charges/summary${query}`);
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(new URL(path, this.url), {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`sandbox ${method} ${path} answered ${res.status}: ${text.slice(0, 200)}`);
    return parseJson(text) as T;
  }
}
