/**
 * Exact money for royalties: decimal strings (as PostgreSQL NUMERIC gives them) ↔ BigInt in units of
 * 10^-scale. Nothing here ever touches a float.
 */

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

/** "12.5" at scale 6 → 12500000n. Refuses text that is not a plain decimal or has more places than `scale`. */
export function toUnits(decimal: string, scale: number): bigint {
  const m = DECIMAL.exec(decimal);
  if (!m) throw new RangeError(`not a decimal amount: ${JSON.stringify(decimal)}`);
  const [, sign, whole, fraction = ''] = m;
  if (fraction.length > scale) {
    // Trailing zeros beyond the scale are exact; anything else would round.
    if (!/^0*$/.test(fraction.slice(scale)))
      throw new RangeError(`${decimal} has more than ${scale} decimal places`);
  }
  const units = BigInt(`${whole}${fraction.slice(0, scale).padEnd(scale, '0')}`);
  return sign ? -units : units;
}

/** 12500000n at scale 6 → "12.500000": always `scale` places, a leading "-" for negatives. */
export function fromUnits(units: bigint, scale: number): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  const text = scale === 0 ? whole : `${whole}.${digits.slice(digits.length - scale)}`;
  return negative ? `-${text}` : text;
}

export const pow10 = (n: number): bigint => 10n ** BigInt(n);

/** Divides by `factor`, rounding half away from zero (half up for the non-negative amounts of royalties). */
export function roundHalfUp(units: bigint, factor: bigint): bigint {
  if (factor <= 0n) throw new RangeError('factor must be positive');
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const q = (abs + factor / 2n) / factor;
  return negative ? -q : q;
}
