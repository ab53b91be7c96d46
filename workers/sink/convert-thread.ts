import { convertRecords, suppressionSet, type Converted } from './convert';

/** The sink's conversion thread (piscina): one task is a slice of one batch's record values. */
export default function convert({
  values,
  suppressions,
}: {
  values: (Uint8Array | null)[];
  suppressions: SharedArrayBuffer;
}): Converted {
  const suppressed = suppressionSet(suppressions);
  return convertRecords(values, suppressed.size ? (key) => suppressed.has(key) : null);
}
