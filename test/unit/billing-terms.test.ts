import { fromMinor, minorDigits, toMinor } from '../../domain/billing/money';
import { BUILT_IN_PLANS, PlanCatalog } from '../../domain/billing/plans';
import {
  addSpan,
  chargeKey,
  days,
  planFamily,
  prorate,
  refundKey,
  sameSpan,
} from '../../domain/billing/terms';

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
    // Minor units follow the currency (JPY has none); NUMERIC(12, 2) cannot hold a third decimal.
    expect(new PlanCatalog([{ ...base, currency: 'JPY' }]).get(base.plan)?.currency).toBe('JPY');
    expect(() => new PlanCatalog([{ ...base, currency: 'BHD' }])).toThrow(/three decimals/);
    expect(() => new PlanCatalog([{ ...base, currency: 'XYZ' }])).toThrow(/ISO 4217/);
    expect(new PlanCatalog([{ ...base, currency: 'SEK' }]).get(base.plan)?.currency).toBe('SEK');
  });

  it('gives plans their policy defaults: family by name, a trial bound, exclusive', () => {
    const catalog = new PlanCatalog(BUILT_IN_PLANS);
    expect(catalog.get('premium-duo')).toMatchObject({
      family: 'premium',
      maxTrialMs: days(90),
      exclusive: true,
    });
    expect(catalog.get('demo-plus')?.family).toBe('demo');
    const base = BUILT_IN_PLANS[0] as (typeof BUILT_IN_PLANS)[number];
    const addon = new PlanCatalog([
      { ...base, plan: 'audiobooks-addon', exclusive: false, family: 'audiobooks' },
    ]);
    expect(addon.get('audiobooks-addon')).toMatchObject({ exclusive: false, family: 'audiobooks' });
    expect(planFamily({ plan: 'premium-monthly' })).toBe('premium');
    expect(refundKey('sub:s1:p3:a0')).toBe('refund:sub:s1:p3:a0');
  });

  it('converts amounts to and from minor units exactly, per currency', () => {
    expect([minorDigits('EUR'), minorDigits('JPY'), minorDigits('BHD')]).toEqual([2, 0, 3]);
    expect(toMinor('10.99', 'EUR')).toBe(1099);
    expect(toMinor('10.9', 'EUR')).toBe(1090);
    expect(toMinor('980', 'JPY')).toBe(980);
    expect(toMinor('980.00', 'JPY')).toBe(980);
    expect(() => toMinor('10.999', 'EUR')).toThrow(/decimals/);
    expect(() => toMinor('-1', 'EUR')).toThrow(/decimal amount/);
    expect(fromMinor(1099, 'EUR')).toBe('10.99');
    expect(fromMinor(5, 'EUR')).toBe('0.05');
    expect(fromMinor(980, 'JPY')).toBe('980');
    expect(toMinor(fromMinor(123_456_789, 'SEK'), 'SEK')).toBe(123_456_789);
  });
});
