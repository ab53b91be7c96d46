import { isRowsRecord, scanRows, TickRows, userKey, type RowsScan } from '../../domain/play-ticks/rows';
import { tickProblem, type PlayTick } from '../../domain/play-ticks/ticks';

/** A record (or one tick of it) the sink cannot insert: it goes to the DLQ with this reason. */
export interface Reject {
  /** Index of the record in the values converted. */
  index: number;
  reason: string;
  /** The record, or the one tick of an array that failed; a binary record in base64. */
  record: string;
  encoding?: 'base64';
}

export interface Converted {
  /** RowBinary rows in `ROW_COLUMNS` order, in pieces (views into the records where they were rows). */
  rows: Uint8Array[];
  count: number;
  suppressed: number;
  rejects: Reject[];
}

/** Whether a user is suppressed, by `userKey`; null when nobody is (the rows then need no lookup). */
export type Suppressed = ((key: string) => boolean) | null;

/**
 * Kafka record values → RowBinary rows. A `CTR1` record (the API's) is checked in place and passed
 * through; a JSON record is one tick or an array of ticks, each validated again and written as a row.
 * Ticks of suppressed users are dropped and counted. Pure, so it runs the same on the sink's threads and
 * inline.
 */
export function convertRecords(values: readonly (Uint8Array | null)[], isSuppressed: Suppressed): Converted {
  const out: Converted = { rows: [], count: 0, suppressed: 0, rejects: [] };
  let json: TickRows | undefined;
  for (const [index, value] of values.entries()) {
    const bytes = value ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : Buffer.alloc(0);
    if (isRowsRecord(bytes)) {
      const scan: RowsScan = scanRows(bytes, isSuppressed);
      if (scan.problem !== undefined) {
        out.rejects.push({
          index,
          reason: scan.problem,
          record: bytes.toString('base64'),
          encoding: 'base64',
        });
        continue;
      }
      out.rows.push(...scan.rows);
      out.count += scan.count;
      out.suppressed += scan.suppressed;
      continue;
    }
    const raw = bytes.toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      out.rejects.push({ index, reason: 'not JSON', record: raw });
      continue;
    }
    const isArray = Array.isArray(parsed);
    const ticks: unknown[] = isArray ? (parsed as unknown[]) : [parsed];
    if (!ticks.length) out.rejects.push({ index, reason: 'an empty array of ticks', record: raw });
    for (let i = 0; i < ticks.length; i++) {
      const tick = ticks[i];
      const reason = tickProblem(tick, null);
      if (reason) {
        out.rejects.push(
          isArray
            ? { index, reason: `tick ${i}: ${reason}`, record: JSON.stringify(tick) }
            : { index, reason, record: raw },
        );
        continue;
      }
      const t = tick as PlayTick;
      if (isSuppressed?.(userKey(t.user_id))) {
        out.suppressed++;
        continue;
      }
      json ??= new TickRows(ticks.length, false);
      json.add(t);
      out.count++;
    }
  }
  if (json) out.rows.push(json.bytes());
  return out;
}

/**
 * The suppression list as shared memory for the sink's threads: the users' `userKey`s, 16 bytes each.
 * One snapshot per refresh; each thread decodes a snapshot once (`suppressionSet`).
 */
export function encodeSuppressions(keys: Iterable<string>): SharedArrayBuffer {
  const text = Buffer.from([...keys].join(''), 'latin1');
  const shared = new SharedArrayBuffer(text.length);
  text.copy(Buffer.from(shared));
  return shared;
}

const decoded = new WeakMap<SharedArrayBuffer, Set<string>>();

export function suppressionSet(shared: SharedArrayBuffer): Set<string> {
  let set = decoded.get(shared);
  if (!set) {
    const text = Buffer.from(shared).toString('latin1');
    set = new Set();
    for (let i = 0; i < text.length; i += 16) set.add(text.slice(i, i + 16));
    decoded.set(shared, set);
  }
  return set;
}
