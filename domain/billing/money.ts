/**
 * Amounts as integer minor units of their currency, converted exactly to and from the decimal text
 * PostgreSQL's NUMERIC holds. A currency's minor unit is ICU's (EUR 2 decimals, JPY 0, BHD 3).
 */

/** The decimals of a currency's minor unit, as ICU knows them. */
export const minorDigits = (currency: string) =>
  new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;

/** "10.99" EUR → 1099; "980" JPY → 980. More decimals than the currency has is refused, never rounded. */
export function toMinor(amount: string, currency: string): number {
  const digits = minorDigits(currency);
  const m = /^(\d+)(?:\.(\d+))?$/.exec(amount.trim());
  if (!m) throw new Error(`"${amount}" is not a non-negative decimal amount`);
  const fraction = (m[2] ?? '').replace(/0+$/, '');
  if (fraction.length > digits) throw new Error(`${amount} ${currency} has more than ${digits} decimals`);
  const minor = BigInt(m[1] as string) * 10n ** BigInt(digits) + BigInt(fraction.padEnd(digits, '0') || '0');
  if (minor > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${amount} ${currency} is too large`);
  return Number(minor);
}

/** 1099 EUR → "10.99"; 980 JPY → "980". */
export function fromMinor(minor: number, currency: string): string {
  if (!Number.isSafeInteger(minor) || minor < 0) throw new Error(`${minor} is not a minor-unit amount`);
  const digits = minorDigits(currency);
  if (digits === 0) return String(minor);
  const text = String(minor).padStart(digits + 1, '0');
  return `${text.slice(0, -digits)}.${text.slice(-digits)}`;
}
