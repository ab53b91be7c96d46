import { randomUUID } from 'node:crypto';
import type { PlayTick } from '../../domain/play-ticks/ticks';

/** A valid play-tick with fresh IDs, sent ten seconds ago; `over` replaces any field. */
export const aTick = (over: Partial<PlayTick> = {}): PlayTick => ({
  event_id: randomUUID(),
  play_id: randomUUID(),
  user_id: randomUUID(),
  track_id: randomUUID(),
  country: 'SE',
  device_id: 'ios-17-abc',
  position_ms: 5000,
  event_time: new Date(Date.now() - 10_000).toISOString(),
  ...over,
});
