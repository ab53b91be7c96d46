import { z } from 'zod';
import { days, type PlanTerms } from './terms';

/**
 * The plan catalog: configuration, not code paths. The built-in plans below are the defaults;
 * CADENZA_BILLING_PLANS_FILE names a JSON file `{ "plans": [PlanTerms…] }` that replaces them.
 *
 * Grace and dunning defaults: a 7-day grace with retries on days 1, 3, 5 and 7. The app stores offer
 * 3-, 16- and 28-day billing grace periods; card networks limit reattempts (Visa: 15 in 30 days) and
 * recoveries cluster in the first days and around paydays, so four spaced retries inside a week is
 * within every network's rules and keeps premium for at most a week unpaid.
 */
const MINUTE = 60_000;
const standard = { currency: 'EUR', period: { months: 1 }, trialMs: days(30), graceMs: days(7) };
const dunning = [days(1), days(3), days(5), days(7)];

export const BUILT_IN_PLANS: PlanTerms[] = [
  { plan: 'premium-individual', priceMinor: 1099, ...standard, dunningMs: dunning },
  { plan: 'premium-duo', priceMinor: 1499, ...standard, dunningMs: dunning },
  { plan: 'premium-family', priceMinor: 1799, ...standard, dunningMs: dunning },
  { plan: 'premium-student', priceMinor: 599, ...standard, dunningMs: dunning },
  // Demo plans: a whole lifecycle (trial, renewal, decline, grace, dunning, recovery or expiry) in
  // minutes, to watch in the Temporal Web UI.
  ...(['demo', 'demo-plus'] as const).map((plan, i) => ({
    plan,
    priceMinor: 199 + i * 100,
    currency: 'EUR',
    period: { ms: 3 * MINUTE },
    trialMs: 1 * MINUTE,
    graceMs: 2 * MINUTE,
    dunningMs: [MINUTE / 2, MINUTE, 2 * MINUTE],
  })),
];

const KNOWN_CURRENCIES = new Set(Intl.supportedValuesOf('currency'));
/** The decimals of a currency's minor unit, as ICU knows them (EUR 2, JPY 0, BHD 3). */
const currencyDigits = (currency: string) =>
  new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;

const Terms = z
  .object({
    plan: z.string().regex(/^[a-z][a-z0-9_-]{1,40}$/),
    priceMinor: z.number().int().min(0).max(100_000_000),
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/)
      .refine((c) => KNOWN_CURRENCIES.has(c), { message: 'not an ISO 4217 currency' })
      .refine((c) => currencyDigits(c) === 2, {
        // Amounts reach PostgreSQL as minor / 100: a currency with 0 or 3 decimals would be stored wrong.
        message: 'only currencies with two decimals (cents) are supported; JPY, BHD and the like are not yet',
      }),
    period: z.union([
      z.object({ months: z.number().int().min(1).max(36) }).strict(),
      z.object({ ms: z.number().int().min(1000) }).strict(),
    ]),
    trialMs: z.number().int().min(0),
    graceMs: z.number().int().min(0),
    dunningMs: z.array(z.number().int().min(1)).max(15),
  })
  .strict()
  .refine((t) => t.dunningMs.every((d, i) => d <= t.graceMs && (i === 0 || d > (t.dunningMs[i - 1] ?? 0))), {
    message: 'dunning retries must be increasing and fall within the grace period',
  });

export class PlanCatalog {
  private readonly byName: Map<string, PlanTerms>;

  constructor(plans: PlanTerms[]) {
    const parsed = z.array(Terms).min(1).parse(plans);
    this.byName = new Map(parsed.map((p) => [p.plan, p]));
    if (this.byName.size !== parsed.length) throw new Error('plan names must be unique');
  }

  get(plan: string): PlanTerms | undefined {
    return this.byName.get(plan);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** The plans Cadenza ships with. */
  static builtIn(): PlanCatalog {
    return new PlanCatalog(BUILT_IN_PLANS);
  }

  /** A catalog file's contents, `{ "plans": [...] }` (validated like the built-in ones). */
  static parse(json: unknown): PlanCatalog {
    return new PlanCatalog((json as { plans?: PlanTerms[] } | null)?.plans ?? []);
  }
}
