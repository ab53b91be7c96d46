import { randomUUID } from 'node:crypto';
import { decodeRows, readUuid, scanRows, TickRows, userKey, writeUuid } from '../../domain/play-ticks/rows';
import { isUuid, type PlayTick } from '../../domain/play-ticks/ticks';
import { aTick } from '../helpers/ticks';

const tick = (over: Partial<PlayTick> = {}) => aTick({ event_time: '2026-11-26T12:00:05.000Z', ...over });
const recordOf = (ticks: PlayTick[]) => {
  const rows = new TickRows(1);
  for (const t of ticks) rows.add(t);
  return Buffer.from(rows.bytes());
};
const problem = (record: Buffer) => scanRows(record, null).problem;

/** The API → sink record format: ClickHouse RowBinary rows behind the magic CTR1. */
describe('play-tick rows', () => {
  it('writes UUIDs as ClickHouse does (two little-endian halves) and reads them back in lower case', () => {
    const b = Buffer.alloc(16);
    expect(writeUuid(b, 0, '61F0C404-5CB3-11E7-907B-A6006AD3DBA0')).toBe(true);
    // The example of ClickHouse's RowBinary documentation.
    expect(b.toString('hex')).toBe('e711b35c04c4f061a0dbd36a00a67b90');
    expect(readUuid(b, 0)).toBe('61f0c404-5cb3-11e7-907b-a6006ad3dba0');
    for (const bad of [
      '61f0c404-5cb3-11e7-907b-a6006ad3dbag',
      '61f0c4045-cb3-11e7-907b-a6006ad3dba0',
      '',
      'é'.repeat(36),
    ])
      expect(writeUuid(b, 0, bad)).toBe(false);
    expect(() => userKey('nope')).toThrow(RangeError);
  });

  it('checks UUIDs (isUuid and writeUuid) exactly as the 8-4-4-4-12 hex pattern does', () => {
    const pattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
    const base = randomUUID();
    const alphabet = '0123456789abcdefABCDEFgG-_ zé\u0000\u0130';
    const candidates = [base, base.toUpperCase(), '', base.slice(1), `${base}0`, base.replaceAll('-', '')];
    for (let i = 0; i < 36; i++)
      for (const c of alphabet) candidates.push(base.slice(0, i) + c + base.slice(i + 1));
    const b = Buffer.alloc(16);
    for (const c of candidates) {
      expect([c, isUuid(c)]).toEqual([c, pattern.test(c)]);
      expect([c, writeUuid(b, 0, c)]).toEqual([c, pattern.test(c)]);
    }
  });

  it('round-trips ticks, including device_ids of 1, 127 and 128 characters (a two-byte length)', () => {
    const ticks = [
      tick({ device_id: 'a' }),
      tick({ device_id: 'b'.repeat(127), position_ms: 86_400_000 }),
      tick({ device_id: `~${'c'.repeat(127)}`, country: 'ZZ', position_ms: 0 }),
    ];
    const record = recordOf(ticks);
    expect(scanRows(record, null)).toEqual({ rows: [record.subarray(4)], count: 3, suppressed: 0 });
    expect(decodeRows(record)).toEqual(ticks);
  });

  it('leaves out suppressed users wherever their rows are, as views into the record', () => {
    const gone = randomUUID();
    const ticks = [tick({ user_id: gone }), tick(), tick({ user_id: gone }), tick(), tick({ user_id: gone })];
    const record = recordOf(ticks);
    const scan = scanRows(record, (key) => key === userKey(gone));
    if (scan.problem !== undefined) throw new Error(scan.problem);
    expect(scan.count).toBe(2);
    expect(scan.suppressed).toBe(3);
    expect(scan.rows.every((r) => r.buffer === record.buffer)).toBe(true);
    expect(decodeRows(Buffer.concat([record.subarray(0, 4), ...scan.rows]))).toEqual([ticks[1], ticks[3]]);
  });

  it('refuses a record whose rows are cut short, malformed or out of range, naming the row', () => {
    const record = recordOf([tick(), tick({ device_id: 'tv-1' })]);
    const second = record.length - (64 + 2 + 1 + 4 + 8);
    const at = (o: number, v: number) => {
      const copy = Buffer.from(record);
      copy[o] = v;
      return copy;
    };
    expect(problem(record.subarray(0, record.length - 1))).toBe('row 1: cut short');
    expect(problem(record.subarray(0, second + 10))).toBe('row 1: cut short');
    expect(problem(Buffer.concat([record, Buffer.from([0])]))).toBe('row 2: cut short');
    expect(problem(record.subarray(0, 4))).toBe('a record with no rows');
    expect(problem(at(second + 65, 'e'.charCodeAt(0)))).toBe('row 1: country must be two capital letters');
    expect(problem(at(second + 66, 0))).toBe('row 1: device_id must be 1–128 bytes');
    expect(problem(at(second + 66, 0x85))).toBe('row 1: device_id must be 1–128 bytes'); // 5 + 't' << 7
    const runaway = at(second + 66, 0x85);
    runaway[second + 67] = 0x80; // a third length byte: no length of 1–128 needs one
    expect(problem(runaway)).toBe('row 1: device_id length is malformed');
    expect(problem(at(second + 68, ' '.charCodeAt(0)))).toBe('row 1: device_id must be printable ASCII');
    const far = Buffer.from(record);
    far.writeUInt32LE(86_400_001, second + 71);
    expect(problem(far)).toBe('row 1: position_ms must be at most one day');
  });
});
