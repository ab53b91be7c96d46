import fc from 'fast-check';
import { allocateLargestRemainder } from '../../domain/royalties/allocation';
import { fromUnits, roundHalfUp, toUnits } from '../../domain/royalties/money';
import {
  changedPins,
  cutoffProblem,
  defaultCutoff,
  isMonth,
  monthEnd,
  monthStart,
  previousMonth,
  samePins,
  type Pins,
} from '../../domain/royalties/pins';
import { minRoyaltyTicks, shortPlayTicks } from '../../domain/royalties/policy';
import { artistFooter, summaryJson, type StatementSummary } from '../../domain/royalties/statement';

/** The settlement's pure rules: exact money, the one rounding rule, pins, statement bytes. */
describe('royalty money', () => {
  it('reads and writes decimal text exactly, at a fixed scale', () => {
    expect(toUnits('12.5', 6)).toBe(12_500_000n);
    expect(toUnits('-0.000001', 6)).toBe(-1n);
    expect(toUnits('7.120000000', 6)).toBe(7_120_000n);
    expect(() => toUnits('0.0000001', 6)).toThrow(/more than 6 decimal places/);
    expect(() => toUnits('1e3', 6)).toThrow(/not a decimal/);
    expect(fromUnits(12_500_000n, 6)).toBe('12.500000');
    expect(fromUnits(-5n, 2)).toBe('-0.05');
    expect(fromUnits(0n, 2)).toBe('0.00');
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }),
        fc.integer({ min: 0, max: 8 }),
        (n, scale) => {
          expect(toUnits(fromUnits(n, scale), scale)).toBe(n);
        },
      ),
    );
  });

  it('rounds half away from zero (half up for royalties)', () => {
    expect(roundHalfUp(4_999n, 10_000n)).toBe(0n);
    expect(roundHalfUp(5_000n, 10_000n)).toBe(1n);
    expect(roundHalfUp(15_000n, 10_000n)).toBe(2n);
    expect(roundHalfUp(-5_000n, 10_000n)).toBe(-1n);
  });
});

describe('largest-remainder allocation (per artist and currency)', () => {
  const micros = fc.array(fc.bigInt({ min: 0n, max: 5_000_000_000n }), { minLength: 1, maxLength: 60 });

  it('the total is the exact sum rounded half up to the cent, and the lines add up to it', () => {
    fc.assert(
      fc.property(micros, (exact) => {
        const { total, shares } = allocateLargestRemainder(exact);
        const sum = exact.reduce((a, b) => a + b, 0n);
        expect(total).toBe((sum + 5_000n) / 10_000n);
        expect(shares.reduce((a, b) => a + b, 0n)).toBe(total);
      }),
    );
  });

  it('each line is its exact amount cut to the cent, plus at most one cent', () => {
    fc.assert(
      fc.property(micros, (exact) => {
        const { shares } = allocateLargestRemainder(exact);
        shares.forEach((share, i) => {
          const floor = (exact[i] as bigint) / 10_000n;
          expect(share === floor || share === floor + 1n).toBe(true);
          if ((exact[i] as bigint) % 10_000n === 0n) expect(share).toBe(floor);
        });
      }),
    );
  });

  it('the extra cents go to the largest remainders; among equals, to the earlier line', () => {
    fc.assert(
      fc.property(micros, (exact) => {
        const { shares } = allocateLargestRemainder(exact);
        const bumped = shares.map((s, i) => s !== (exact[i] as bigint) / 10_000n);
        for (let i = 0; i < exact.length; i++)
          for (let j = 0; j < exact.length; j++) {
            if (!bumped[i] || bumped[j]) continue;
            const ri = (exact[i] as bigint) % 10_000n;
            const rj = (exact[j] as bigint) % 10_000n;
            // A bumped line never has a smaller remainder than one left out (nor an equal one placed after it).
            expect(ri > rj || (ri === rj && i < j)).toBe(true);
          }
      }),
    );
  });

  it('three lines of 0.003333 × 3 plays: 0.029997 → 0.03, one cent each', () => {
    const line = 3n * 3_333n;
    expect(allocateLargestRemainder([line, line, line])).toEqual({ total: 3n, shares: [1n, 1n, 1n] });
    // 0.014 + 0.014 + 0.014 = 0.042 → 0.04: floors 1+1+1, one more cent to the first (equal remainders).
    expect(allocateLargestRemainder([14_000n, 14_000n, 14_000n])).toEqual({
      total: 4n,
      shares: [2n, 1n, 1n],
    });
    // Half a cent rounds up: 0.005 → 0.01.
    expect(allocateLargestRemainder([5_000n])).toEqual({ total: 1n, shares: [1n] });
    expect(() => allocateLargestRemainder([-1n])).toThrow(/never negative/);
  });
});

describe('pins', () => {
  it('months, their bounds and the previous month', () => {
    expect(isMonth('2026-10')).toBe(true);
    expect(isMonth('2026-13')).toBe(false);
    expect(isMonth('1999-12')).toBe(false);
    expect(new Date(monthStart('2026-10')).toISOString()).toBe('2026-10-01T00:00:00.000Z');
    expect(new Date(monthEnd('2026-12')).toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(previousMonth(Date.parse('2026-11-01T02:00:00Z'))).toBe('2026-10');
    expect(previousMonth(Date.parse('2027-01-01T02:00:00Z'))).toBe('2026-12');
    expect(() => monthStart('2026-1')).toThrow(/YYYY-MM/);
  });

  it("the cut-off: the month's end plus whole hours of lateness, never before the end, always on the hour", () => {
    expect(new Date(defaultCutoff('2026-10', 2)).toISOString()).toBe('2026-11-01T02:00:00.000Z');
    expect(() => defaultCutoff('2026-10', 1.5)).toThrow(/whole number of hours/);
    expect(cutoffProblem('2026-10', Date.parse('2026-11-03T00:00:00Z'))).toBeNull();
    expect(cutoffProblem('2026-10', Date.parse('2026-10-31T23:00:00Z'))).toMatch(
      /at or after the month's end/,
    );
    expect(cutoffProblem('2026-10', Date.parse('2026-11-03T00:30:00Z'))).toMatch(/whole hour/);
    expect(cutoffProblem('2026-10', NaN)).toMatch(/not a time/);
  });

  it('same pins means every pin, instants compared as instants', () => {
    const a: Pins = {
      month: '2026-10',
      ingestionCutoff: '2026-11-01T02:00:00.000Z',
      rateVersion: 3,
      policyVersion: 1,
      codeVersion: 1,
      adjustmentsThrough: '2026-11-01T02:00:05.000Z',
    };
    expect(samePins(a, { ...a, ingestionCutoff: '2026-11-01T03:00:00+01:00' })).toBe(true);
    expect(samePins(a, { ...a, rateVersion: 4 })).toBe(false);
    expect(changedPins(a, { ...a, rateVersion: 4, ingestionCutoff: '2026-11-02T00:00:00Z' })).toEqual([
      'ingestionCutoff',
      'rateVersion',
    ]);
  });

  it('durations become tick counts: a 29.9 s play (5 ticks) is not royalty-bearing, a 30 s one (6) is', () => {
    expect(minRoyaltyTicks({ minPlaySeconds: 30 })).toBe(6);
    expect(minRoyaltyTicks({ minPlaySeconds: 31 })).toBe(7);
    expect(shortPlayTicks({ botShortPlaySeconds: 15 })).toBe(3);
  });
});

describe('statement bytes', () => {
  const summary: StatementSummary = {
    pins: {
      month: '2026-10',
      ingestionCutoff: '2026-11-01T02:00:00Z',
      rateVersion: 2,
      policyVersion: 1,
      codeVersion: 1,
      adjustmentsThrough: '2026-11-01T02:00:00.5Z',
    },
    policy: {
      policyVersion: 1,
      minPlaySeconds: 30,
      minTrailingStreams: 1000,
      trailingMonths: 12,
      botRule: 'short-play-bursts',
      botShortPlaySeconds: 15,
      botWindowSeconds: 600,
      botMinShortPlays: 10,
      rounding: 'largest-remainder',
    },
    currencies: [
      {
        currency: 'USD',
        artists: 1,
        lines: 2,
        plays: 9,
        amount: '0.04',
        adjustment: '0.00',
        payable: '0.04',
      },
      {
        currency: 'EUR',
        artists: 1,
        lines: 1,
        plays: 3,
        amount: '0.01',
        adjustment: '-0.50',
        payable: '-0.49',
      },
    ],
    excluded: { botPlays: 4, belowThresholdPlays: 999 },
    held: [{ kind: 'missing_rate', subject: 'a/NO', plays: 7, detail: 'no rate' }],
    artists: [
      {
        artistId: 'b',
        currency: 'USD',
        lines: 2,
        plays: 9,
        exact: '0.036000',
        amount: '0.04',
        adjustment: '0.00',
        payable: '0.04',
      },
      {
        artistId: 'a',
        currency: 'EUR',
        lines: 1,
        plays: 3,
        exact: '0.009999',
        amount: '0.01',
        adjustment: '-0.50',
        payable: '-0.49',
      },
    ],
  };

  it('the summary is the same bytes whatever order its parts come in, with instants normalised', () => {
    const shuffled = {
      ...summary,
      currencies: [...summary.currencies].reverse(),
      artists: [...summary.artists].reverse(),
      pins: { ...summary.pins, ingestionCutoff: '2026-11-01T03:00:00+01:00' },
    };
    expect(summaryJson(shuffled)).toBe(summaryJson(summary));
    const doc = JSON.parse(summaryJson(summary)) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual([
      'format',
      'month',
      'pins',
      'policy',
      'currencies',
      'excluded',
      'held',
      'artists',
    ]);
    expect((doc.pins as { ingestionCutoff: string }).ingestionCutoff).toBe('2026-11-01T02:00:00.000Z');
    expect((doc.artists as { artistId: string }[]).map((a) => a.artistId)).toEqual(['a', 'b']);
    expect(summaryJson(summary).endsWith('}\n')).toBe(true);
  });

  it("an artist's file closes with corrections carried in, totals per currency, and payable when adjusted", () => {
    expect(
      artistFooter(summary.artists.slice(1), [
        { artistId: 'a', currency: 'EUR', originMonth: '2026-08', amount: '-0.50' },
      ]),
    ).toBe('adjustment,2026-08,,,,EUR,-0.50,-0.50\ntotal,,,3,,EUR,0.009999,0.01\npayable,,,,,EUR,,-0.49\n');
    expect(artistFooter(summary.artists.slice(0, 1), [])).toBe('total,,,9,,USD,0.036000,0.04\n');
  });
});
