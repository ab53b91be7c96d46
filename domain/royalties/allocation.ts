import { pow10, roundHalfUp } from './money';

/**
 * The one rounding rule of a settlement (policy `largest-remainder`), per artist and currency:
 *   total  = the sum of the lines' exact amounts, rounded half up to the cent;
 *   a line = its exact amount cut down to the cent, plus one cent for the lines with the largest cut-off
 *            remainders until the lines add up to the total (equal remainders: the earlier line first —
 *            callers order lines by track, then country).
 * So the artist's total is the rounded sum of its lines, every line is within a cent of its exact amount,
 * and the lines add up to the total exactly. The same rule is written in SQL in
 * activities/royalties/payouts.ts; property tests hold the two to each other's answers.
 */

/** Exact line amounts are plays × a rate of 6 decimal places; payouts are in cents. */
export const EXACT_SCALE = 6;
export const PAID_SCALE = 2;
const FACTOR = pow10(EXACT_SCALE - PAID_SCALE);

export interface Allocation {
  /** The group's total in cents. */
  total: bigint;
  /** Each line's cents, in the order given. */
  shares: bigint[];
}

/** Allocates one artist-and-currency group; `exact` are non-negative amounts in millionths. */
export function allocateLargestRemainder(exact: readonly bigint[]): Allocation {
  let sum = 0n;
  let floors = 0n;
  const shares = exact.map((e) => {
    if (e < 0n) throw new RangeError('line amounts are never negative');
    sum += e;
    const f = e / FACTOR;
    floors += f;
    return f;
  });
  const total = roundHalfUp(sum, FACTOR);
  let missing = total - floors;
  // Indices by remainder, largest first; a stable sort keeps the given order among equals.
  const order = exact
    .map((e, i) => ({ i, remainder: e % FACTOR }))
    .sort((a, b) => (a.remainder === b.remainder ? 0 : a.remainder > b.remainder ? -1 : 1));
  for (const { i } of order) {
    if (missing <= 0n) break;
    shares[i] = (shares[i] as bigint) + 1n;
    missing--;
  }
  return { total, shares };
}

/** The exact amount of a line, in millionths: plays × rate (a rate in millionths). */
export const exactAmount = (plays: number | bigint, rateMicros: bigint): bigint => BigInt(plays) * rateMicros;
