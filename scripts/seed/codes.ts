/** Identifier codes with their check rules, for synthetic catalog data. */

/** GS1 check digit for the first 11 (UPC-A) or 12 (EAN-13) digits. */
export function gtinCheckDigit(body: string): number {
  const padded = body.padStart(12, '0');
  let total = 0;
  for (let i = 0; i < 12; i++) total += Number(padded[i]) * (i % 2 === 1 ? 3 : 1);
  return (10 - (total % 10)) % 10;
}

export function isValidGtin(code: string): boolean {
  return /^\d{12,13}$/.test(code) && gtinCheckDigit(code.slice(0, -1)) === Number(code.at(-1));
}

/** A UPC-A for the n-th album: 11 digits from n and a correct check digit. */
export function upcFor(n: number): string {
  const body = `8${String(n).padStart(10, '0')}`;
  return `${body}${gtinCheckDigit(body)}`;
}

const base36 = (n: number, width: number) => n.toString(36).toUpperCase().padStart(width, '0');

/** An ISRC: country, a registrant code per artist, year, and a designation per track of that artist. */
export function isrcFor(country: string, artistIndex: number, year: number, trackOfArtist: number): string {
  return `${country}${base36(artistIndex, 3)}${String(year % 100).padStart(2, '0')}${String(trackOfArtist).padStart(5, '0')}`;
}

export const ISRC_PATTERN = /^[A-Z]{2}[A-Z0-9]{3}\d{2}\d{5}$/;
