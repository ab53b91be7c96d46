import { randomUUID } from 'node:crypto';
import type { PlayTick } from '../../lib/play-ticks';
import { aTick } from '../helpers/ticks';
import { convertRecords, encodeSuppressions, suppressionSet } from '../../workers/sink/convert';

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
      (u) => u === gone,
    );
    expect(out.count).toBe(3);
    expect(out.suppressed).toBe(1);
    const lines = Buffer.from(out.tsv).toString('latin1').trimEnd().split('\n');
    expect(lines.map((l) => l.split('\t')[0])).toEqual([good[0], good[3], single].map((t) => t?.event_id));
    expect(lines[2]?.split('\t')[5]).toBe('tv\\\\'); // a backslash escaped for TabSeparated
    expect(lines[0]?.split('\t')[7]).toBe('2026-11-26 12:00:05');
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

  it('shares the suppression list with threads as one decoded set per snapshot', () => {
    const ids = [randomUUID(), randomUUID()];
    const shared = encodeSuppressions(ids);
    const set = suppressionSet(shared);
    expect([...set].sort()).toEqual([...ids].sort());
    expect(suppressionSet(shared)).toBe(set);
    expect(suppressionSet(encodeSuppressions([])).size).toBe(0);
  });
});
