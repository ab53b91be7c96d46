import { tickProblem, type PlayTick } from '../../lib/play-ticks';
import { TsvRows } from '../../lib/seed/load';

/** A record (or one tick of it) the sink cannot insert: it goes to the DLQ with this reason. */
export interface Reject {
  /** Index of the record in the values converted. */
  index: number;
  reason: string;
  /** The record, or the one tick of an array that failed. */
  record: string;
}

export interface Converted {
  /** TabSeparated rows in ClickHouse column order. */
  tsv: Uint8Array;
  count: number;
  suppressed: number;
  rejects: Reject[];
}

/**
 * Kafka record values → TabSeparated rows: each record is one tick or (from the API's producer) an
 * array of ticks. Every tick is validated again (a record may not have come through the API); ticks of
 * suppressed users are dropped and counted. Pure, so it runs the same on the sink's threads and inline.
 */
export function convertRecords(
  values: readonly (Uint8Array | null)[],
  isSuppressed: (userId: string) => boolean,
): Converted {
  // A tick is about 290 bytes of JSON and 170 of TabSeparated: size the buffer once from the input.
  const rows = new TsvRows(Math.ceil(values.reduce((n, v) => n + (v?.byteLength ?? 0), 0) / 250));
  const rejects: Reject[] = [];
  let suppressed = 0;
  for (const [index, value] of values.entries()) {
    const raw = value ? Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8') : '';
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      rejects.push({ index, reason: 'not JSON', record: raw });
      continue;
    }
    const isArray = Array.isArray(parsed);
    const ticks: unknown[] = isArray ? (parsed as unknown[]) : [parsed];
    if (!ticks.length) rejects.push({ index, reason: 'an empty array of ticks', record: raw });
    for (let i = 0; i < ticks.length; i++) {
      const tick = ticks[i];
      const reason = tickProblem(tick, null);
      if (reason) {
        rejects.push(
          isArray
            ? { index, reason: `tick ${i}: ${reason}`, record: JSON.stringify(tick) }
            : { index, reason, record: raw },
        );
        continue;
      }
      const t = tick as PlayTick;
      if (isSuppressed(t.user_id.toLowerCase())) {
        suppressed++;
        continue;
      }
      rows.add(t);
    }
  }
  return { tsv: rows.bytes(), count: rows.count, suppressed, rejects };
}

/**
 * The suppression list as shared memory for the sink's threads: user IDs joined by newlines. One
 * snapshot per refresh; each thread decodes a snapshot once (`suppressionSet`).
 */
export function encodeSuppressions(userIds: Iterable<string>): SharedArrayBuffer {
  const text = Buffer.from([...userIds].join('\n'), 'latin1');
  const shared = new SharedArrayBuffer(text.length);
  text.copy(Buffer.from(shared));
  return shared;
}

const decoded = new WeakMap<SharedArrayBuffer, Set<string>>();

export function suppressionSet(shared: SharedArrayBuffer): Set<string> {
  let set = decoded.get(shared);
  if (!set) {
    const text = Buffer.from(shared).toString('latin1');
    set = new Set(text ? text.split('\n') : []);
    decoded.set(shared, set);
  }
  return set;
}
