import { randomUUID } from 'node:crypto';
import { records } from '../../api/lib/play-tick-producer';
import type { PlayTick } from '../../domain/play-ticks/ticks';
import { decodeRows } from '../../domain/play-ticks/rows';

const tick = (play_id: string, position_ms: number): PlayTick => ({
  event_id: randomUUID(),
  play_id,
  user_id: randomUUID(),
  track_id: randomUUID(),
  country: 'SE',
  device_id: 'web',
  position_ms,
  event_time: '2026-11-26T12:00:00.000Z',
});

/** How accepted ticks become Kafka records: rows per partition, a play always on one partition, in order. */
describe('play-tick records', () => {
  it('puts a play on one partition, in order, and loses or repeats nothing', () => {
    const plays = Array.from({ length: 40 }, () => randomUUID());
    const ticks = Array.from({ length: 1000 }, (_, i) => tick(plays[i % plays.length] as string, i));
    const out = records(ticks, 6);
    expect(out.length).toBeLessThanOrEqual(6);
    const decoded = out.map((r) => ({
      partition: r.partition,
      ticks: decodeRows(r.value as Buffer),
    }));
    expect(decoded.flatMap((d) => d.ticks).sort((a, b) => a.event_id.localeCompare(b.event_id))).toEqual(
      [...ticks].sort((a, b) => a.event_id.localeCompare(b.event_id)),
    );
    for (const play of plays) {
      const where = decoded.filter((d) => d.ticks.some((t) => t.play_id === play)).map((d) => d.partition);
      expect(new Set(where).size).toBe(1);
      const positions = decoded.flatMap((d) =>
        d.ticks.filter((t) => t.play_id === play).map((t) => t.position_ms),
      );
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
    }
    // The same play maps to the same partition in every call (a stable hash, not per process), however
    // it is spelled.
    expect(records([tick((plays[0] as string).toUpperCase(), 1)], 6)[0]?.partition).toBe(
      decoded.find((d) => d.ticks.some((t) => t.play_id === plays[0]))?.partition,
    );
  });

  it('splits a large partition group into records of at most 2000 ticks', () => {
    const play = randomUUID();
    const out = records(
      Array.from({ length: 4500 }, (_, i) => tick(play, i)),
      6,
    );
    expect(out.map((r) => decodeRows(r.value as Buffer).length)).toEqual([2000, 2000, 500]);
  });
});
