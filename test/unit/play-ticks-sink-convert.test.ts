import { randomUUID } from 'node:crypto';
import type { PlayTick } from '../../domain/play-ticks/ticks';
import { aTick } from '../helpers/ticks';
import { convertRecords, encodeSuppressions, suppressionSet } from '../../workers/sink/convert';
import { decodeRows, ROWS_MAGIC, TickRows, userKey } from '../../domain/play-ticks/rows';

const tick = (over: Partial<PlayTick> = {}) => aTick({ event_time: '2026-11-26T12:00:05.000Z', ...over });
const record = (value: unknown) => Buffer.from(JSON.stringify(value));

/** The sink's conversion of Kafka records to ClickHouse rows (the same on its threads and inline). */
describe('sink conversion', () => {
  it('writes valid ticks as rows, names every reject by record, and drops suppressed users', () => {
    const gone = randomUUID();
    const good = [tick(), tick({ user_id: gone.toUpperCase() }), tick({ country: 'se' }), tick()];
    const single = tick({ device_id: 'tv\\' });
    const out = convertRecords(
      [record(good), Buffer.from('{not json'), record(single), record([]), null],
      (key) => key === userKey(gone),
    );
    expect(out.count).toBe(3);
    expect(out.suppressed).toBe(1);
    const rows = decodeRows(Buffer.concat([ROWS_MAGIC, ...out.rows]));
    expect(rows).toEqual([good[0], good[3], single]);
    expect(out.rejects).toEqual([
      {
        index: 0,
        reason: 'tick 2: country must be an ISO 3166-1 alpha-2 code in capitals',
        record: JSON.stringify(good[2]),
      },
      { index: 1, reason: 'not JSON', record: '{not json' },
      { index: 3, reason: 'an empty array of ticks', record: '[]' },
      { index: 4, reason: 'not JSON', record: '' },
    ]);
  });

  it('passes row records through, refuses a damaged one whole, and drops suppressed users from both kinds', () => {
    const gone = randomUUID();
    const ticks = [tick(), tick({ user_id: gone }), tick()];
    const rows = new TickRows();
    for (const t of ticks) rows.add(t);
    const record = Buffer.from(rows.bytes());
    const damaged = Buffer.from(record);
    damaged[4 + 64] = 'x'.charCodeAt(0); // the first row's country
    const out = convertRecords(
      [record, damaged, Buffer.from(JSON.stringify([tick({ user_id: gone })]))],
      (key) => key === userKey(gone),
    );
    expect(out.count).toBe(2);
    expect(out.suppressed).toBe(2);
    expect(decodeRows(Buffer.concat([ROWS_MAGIC, ...out.rows]))).toEqual([ticks[0], ticks[2]]);
    // The passed-through rows are views into the record, not copies.
    expect(out.rows[0]?.buffer).toBe(record.buffer);
    expect(out.rejects).toEqual([
      {
        index: 1,
        reason: 'row 0: country must be two capital letters',
        record: damaged.toString('base64'),
        encoding: 'base64',
      },
    ]);
  });

  it('shares the suppression list with threads as one decoded set per snapshot', () => {
    const ids = [randomUUID(), randomUUID()].map(userKey);
    const shared = encodeSuppressions(ids);
    const set = suppressionSet(shared);
    expect([...set].sort()).toEqual([...ids].sort());
    expect(suppressionSet(shared)).toBe(set);
    expect(suppressionSet(encodeSuppressions([])).size).toBe(0);
  });
});
