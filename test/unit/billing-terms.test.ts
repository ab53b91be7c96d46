import { BUILT_IN_PLANS, PlanCatalog } from '../../domain/billing/plans';
import { addSpan, chargeKey, prorate, sameSpan } from '../../domain/billing/terms';

const at = (s: string) => Date.parse(s);
const iso = (ms: number) => new Date(ms).toISOString();

describe('billing terms', () => {
  it('adds calendar months from the anchor, clamping to the month end without drifting', () => {
    const jan31 = at('2026-01-31T10:00:00.000Z');
    expect(iso(addSpan(jan31, { months: 1 }, 1))).toBe('2026-02-28T10:00:00.000Z');
    expect(iso(addSpan(jan31, { months: 1 }, 2))).toBe('2026-03-31T10:00:00.000Z');
    expect(iso(addSpan(jan31, { months: 1 }, 13))).toBe('2027-02-28T10:00:00.000Z');
    expect(iso(addSpan(at('2027-12-15T00:00:00.000Z'), { months: 1 }, 1))).toBe('2028-01-15T00:00:00.000Z');
    expect(iso(addSpan(at('2028-01-31T00:00:00.000Z'), { months: 1 }, 1))).toBe('2028-02-29T00:00:00.000Z');
    expect(addSpan(1000, { ms: 500 }, 3)).toBe(2500);
  });

  it('prorates upgrades exactly, rounding half up to the minor unit', () => {
    expect(prorate(1099, 1799, 15, 30)).toBe(350);
    expect(prorate(1000, 1001, 1, 2)).toBe(1); // 0.5 → 1
    expect(prorate(1000, 1003, 1, 6)).toBe(1); // 0.5 → 1
    expect(prorate(1000, 1003, 1, 7)).toBe(0); // 0.43 → 0
    expect(prorate(1799, 1099, 15, 30)).toBe(0); // downgrades are never prorated
    expect(prorate(1000, 2000, 40, 30)).toBe(1000); // never more than a full period
    // Large values stay exact (no float rounding): 99,999,999 cents over a 31-day period in ms.
    expect(prorate(0, 99_999_999, 1_339_200_000, 2_678_400_000)).toBe(50_000_000);
  });

  it('derives one idempotency key per (subscription, period, attempt)', () => {
    expect(chargeKey('s1', 3, 0)).toBe('sub:s1:p3:a0');
    expect(chargeKey('s1', 3, 'change-v7')).toBe('sub:s1:p3:change-v7');
    expect(sameSpan({ months: 1 }, { months: 1 })).toBe(true);
    expect(sameSpan({ months: 1 }, { ms: 1 })).toBe(false);
  });

  it('validates the catalog: unique names, dunning inside the grace, integer prices', () => {
    expect(new PlanCatalog(BUILT_IN_PLANS).names()).toContain('demo');
    const base = BUILT_IN_PLANS[0] as (typeof BUILT_IN_PLANS)[number];
    expect(() => new PlanCatalog([base, base])).toThrow(/unique/);
    expect(() => new PlanCatalog([{ ...base, dunningMs: [base.graceMs + 1] }])).toThrow(/within the grace/);
    expect(() => new PlanCatalog([{ ...base, priceMinor: 10.99 }])).toThrow();
    // Minor units are hundredths everywhere money is stored: other exponents are refused, not misstored.
    expect(() => new PlanCatalog([{ ...base, currency: 'JPY' }])).toThrow(/two decimals/);
    expect(() => new PlanCatalog([{ ...base, currency: 'BHD' }])).toThrow(/two decimals/);
    expect(() => new PlanCatalog([{ ...base, currency: 'XYZ' }])).toThrow(/ISO 4217/);
    expect(new PlanCatalog([{ ...base, currency: 'SEK' }]).get(base.plan)?.currency).toBe('SEK');
  });
});
