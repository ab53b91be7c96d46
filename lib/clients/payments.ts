import type { Config } from '../config';
import type { PaymentProvider } from '../../domain/billing/payments';
import { SandboxProvider } from './payments-sandbox';

export * from '../../domain/billing/payments';

/** The provider billing charges through, as configured (CADENZA_PAYMENTS_PROVIDER). */
export function createPaymentProvider(cfg: Config['payments']): PaymentProvider {
  switch (cfg.provider) {
    case 'sandbox':
      return new SandboxProvider({ url: cfg.sandbox.url, timeoutMs: cfg.timeoutMs });
    default: {
      const unknown: never = cfg.provider;
      throw new Error(`unknown payment provider ${String(unknown)}`);
    }
  }
}
