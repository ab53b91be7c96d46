import { hexBits, TICK_FIELDS, uuidDashes, type PlayTick } from './ticks';

/**
 * Play-ticks as ClickHouse RowBinary rows: the record format from the API to the sink.
 *
 * The API has parsed and validated every tick already; it writes them as the rows ClickHouse inserts, so
 * the sink checks each row's framing and ranges in place and passes the bytes through — no JSON parse, no
 * re-encoding (a JSON tick cost the sink ≈ 7 µs; a row costs it well under one). A record is the magic
 * `CTR1` followed by rows of the columns in `TICK_FIELDS` order:
 *
 * | column | RowBinary |
 * |---|---|
 * | event_id, play_id, user_id, track_id | UUID: 16 bytes, two little-endian UInt64 halves (high, low) |
 * | country | FixedString(2): two bytes A–Z |
 * | device_id | String: LEB128 length (1–128) and that many printable ASCII bytes |
 * | position_ms | UInt32 little-endian, at most one day |
 * | event_time | DateTime: UInt32 little-endian, seconds since the epoch |
 *
 * JSON records (one tick or an array of ticks, from other producers or older API versions) stay valid: the
 * sink validates those as before and writes them as the same rows.
 */
export const ROWS_MAGIC = Buffer.from('CTR1', 'latin1');
/** Columns of the rows, for `INSERT INTO play_ticks (…) FORMAT RowBinary`. */
export const ROW_COLUMNS = TICK_FIELDS;

const UUID_BYTES = 16;
/** Offset of user_id inside a row. */
const USER_AT = 2 * UUID_BYTES;
/** Four UUIDs and the country: the fixed part before device_id's length. */
const FIXED = 4 * UUID_BYTES + 2;
const MAX_DEVICE = 128;
const MAX_POSITION_MS = 86_400_000;
/** Largest row: the fixed part, a two-byte length, the longest device_id, position and time. */
const MAX_ROW = FIXED + 2 + MAX_DEVICE + 8;

/** The validator's hex digit check, bound here once (called through the import binding, it took 4× the time). */
const hexValue = hexBits;
/** Where each byte's two hex digits start in `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, most significant first. */
const HEX_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/**
 * Writes a UUID's text as its 16 RowBinary bytes at `o`, checking it in the same pass (the tick
 * validator's rule: isUuid); false when the text is not a UUID, and then the 16 bytes at `o` are
 * garbage. Each 8-byte half is little-endian, so text byte j lands at 7 - j (high) or 23 - j (low).
 */
export function writeUuid(b: Buffer, o: number, text: string): boolean {
  if (!uuidDashes(text)) return false;
  let bad = 0;
  for (let j = 0; j < 16; j++) {
    const at = HEX_AT[j] as number;
    const hi = hexValue(text.charCodeAt(at));
    const lo = hexValue(text.charCodeAt(at + 1));
    bad |= hi | lo;
    b[o + (j < 8 ? 7 - j : 23 - j)] = (hi << 4) | lo;
  }
  return bad < 16;
}

/** A user's key in the suppression set: the 16 RowBinary bytes of the ID as a latin1 string. */
export function userKey(userId: string): string {
  const b = Buffer.allocUnsafe(UUID_BYTES);
  if (!writeUuid(b, 0, userId)) throw new RangeError(`not a UUID: ${userId}`);
  return b.toString('latin1');
}

/** The UUID text of 16 RowBinary bytes (the inverse of writeUuid, lower case). */
export function readUuid(b: Uint8Array, o: number): string {
  let hex = '';
  for (let j = 7; j >= 0; j--) hex += (b[o + j] as number).toString(16).padStart(2, '0');
  for (let j = 15; j >= 8; j--) hex += (b[o + j] as number).toString(16).padStart(2, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Builds one record (or, with `magic` false, bare rows for an insert) from valid ticks. */
export class TickRows {
  private buf: Buffer;
  private length = 0;
  count = 0;

  constructor(expectedRows = 256, magic = true) {
    this.buf = Buffer.allocUnsafe(Math.max(1024, expectedRows * 100));
    if (magic) this.length = ROWS_MAGIC.copy(this.buf, 0);
  }

  /**
   * Appends a tick that passed `tickProblem`; `eventMs` is its event_time already parsed, when the caller
   * has it. Throws on a tick that did not pass (a bug in the caller, never bad input).
   */
  add(t: PlayTick, eventMs = Date.parse(t.event_time)): void {
    if (this.length + MAX_ROW > this.buf.length) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, 0, this.length);
      this.buf = bigger;
    }
    const b = this.buf;
    let o = this.length;
    if (
      !writeUuid(b, o, t.event_id) ||
      !writeUuid(b, o + 16, t.play_id) ||
      !writeUuid(b, o + 32, t.user_id) ||
      !writeUuid(b, o + 48, t.track_id)
    ) {
      throw new RangeError('TickRows.add: a tick that was not validated');
    }
    o += 4 * UUID_BYTES;
    b[o++] = t.country.charCodeAt(0);
    b[o++] = t.country.charCodeAt(1);
    const device = t.device_id.length;
    if (device < 0x80) b[o++] = device;
    else {
      b[o++] = (device & 0x7f) | 0x80;
      b[o++] = device >> 7;
    }
    o += b.write(t.device_id, o, device, 'latin1');
    b.writeUInt32LE(t.position_ms, o);
    b.writeUInt32LE(Math.floor(eventMs / 1000), o + 4);
    this.length = o + 8;
    this.count++;
  }

  /** The record so far (a view: valid until the next add). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** The ticks of a `CTR1` record that passed `scanRows` (for tools and tests; the sink never decodes). */
export function decodeRows(record: Uint8Array): PlayTick[] {
  const b = Buffer.from(record.buffer, record.byteOffset, record.byteLength);
  const ticks: PlayTick[] = [];
  for (let o = ROWS_MAGIC.length; o < b.length;) {
    const ids = [0, 1, 2, 3].map((i) => readUuid(b, o + i * UUID_BYTES));
    o += 4 * UUID_BYTES;
    const country = b.toString('latin1', o, o + 2);
    o += 2;
    let device = b[o++] as number;
    if (device & 0x80) device = (device & 0x7f) | ((b[o++] as number) << 7);
    const device_id = b.toString('latin1', o, o + device);
    o += device;
    ticks.push({
      event_id: ids[0] as string,
      play_id: ids[1] as string,
      user_id: ids[2] as string,
      track_id: ids[3] as string,
      country,
      device_id,
      position_ms: b.readUInt32LE(o),
      event_time: new Date(b.readUInt32LE(o + 4) * 1000).toISOString(),
    });
    o += 8;
  }
  return ticks;
}

export const isRowsRecord = (v: Uint8Array): boolean =>
  v.length >= 4 && v[0] === 0x43 && v[1] === 0x54 && v[2] === 0x52 && v[3] === 0x31;

export type RowsScan =
  | { problem: string }
  | {
      problem?: undefined;
      /** The rows to insert: views into the record, without suppressed users' rows. */
      rows: Buffer[];
      count: number;
      suppressed: number;
    };

/**
 * Checks a `CTR1` record row by row without copying it: framing (no row cut short, nothing after the
 * last), country letters, device_id length and characters, position range. Any UUID bytes and any
 * DateTime are valid values, so those need no check. A record that fails is refused whole: past a bad
 * row the framing cannot be trusted. Rows of suppressed users (by `userKey`) are left out of the views.
 */
export function scanRows(record: Buffer, isSuppressed: ((key: string) => boolean) | null): RowsScan {
  const b = record;
  const end = b.length;
  const rows: Buffer[] = [];
  let keepFrom = ROWS_MAGIC.length;
  let count = 0;
  let suppressed = 0;
  let o = keepFrom;
  for (let row = 0; o < end; row++) {
    const start = o;
    if (o + FIXED + 1 > end) return { problem: `row ${row}: cut short` };
    o += 4 * UUID_BYTES;
    const c0 = b[o] as number;
    const c1 = b[o + 1] as number;
    if (c0 < 65 || c0 > 90 || c1 < 65 || c1 > 90)
      return { problem: `row ${row}: country must be two capital letters` };
    o += 2;
    let device = b[o++] as number;
    if (device & 0x80) {
      const high = b[o++] ?? 0x80;
      if (high & 0x80) return { problem: `row ${row}: device_id length is malformed` };
      device = (device & 0x7f) | (high << 7);
    }
    if (device < 1 || device > MAX_DEVICE) return { problem: `row ${row}: device_id must be 1–128 bytes` };
    if (o + device + 8 > end) return { problem: `row ${row}: cut short` };
    for (let i = o + device; o < i; o++) {
      const c = b[o] as number;
      if (c < 0x21 || c > 0x7e) return { problem: `row ${row}: device_id must be printable ASCII` };
    }
    if (b.readUInt32LE(o) > MAX_POSITION_MS)
      return { problem: `row ${row}: position_ms must be at most one day` };
    o += 8;
    if (isSuppressed?.(b.toString('latin1', start + USER_AT, start + USER_AT + UUID_BYTES))) {
      if (start > keepFrom) rows.push(b.subarray(keepFrom, start));
      keepFrom = o;
      suppressed++;
    } else count++;
  }
  if (!count && !suppressed) return { problem: 'a record with no rows' };
  if (o > keepFrom) rows.push(b.subarray(keepFrom, o));
  return { rows, count, suppressed };
}
