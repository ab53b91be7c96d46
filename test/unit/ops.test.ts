import { countryOf, SessionRecorder } from '../../api/lib/session-recorder';
import { retarget } from '../../activities/ops/backups/clickhouse';
import { drillDatabase } from '../../activities/ops/backups/postgres';
import { PARTITION_POLICIES, partitionPolicy } from '../../domain/ops/partitions';
import type { PlayTick } from '../../domain/play-ticks/ticks';
import { canonicalSpec } from '../../scripts/schedules';
import { backoffSeconds, idempotencyKeyOf } from '../../workers/outbox/relay';
import { BACKUP_ID, OpsJob, minuteKey, opsRunId } from '../../workflows/ops/contract';
import { SCHEDULES } from '../../workflows/schedules';
import type { DatabasePool } from 'slonik';

describe('ops: keys, specs and small rules', () => {
  it('keys a job run by the minute it was due, in UTC', () => {
    const due = new Date('2026-11-30T03:00:59.999Z');
    expect(minuteKey(due)).toBe('2026-11-30T0300Z');
    expect(opsRunId(OpsJob.backup, due)).toBe('backup-2026-11-30T0300Z');
    expect(BACKUP_ID.test(minuteKey(due))).toBe(true);
    expect(BACKUP_ID.test('2026-11-30')).toBe(false);
  });

  it('reads a cron spec as Temporal describes it, and refuses what is not one', () => {
    const described = {
      calendars: [
        {
          second: [{ start: 0, end: 0, step: 1 }],
          minute: [{ start: 0, end: 0, step: 1 }],
          hour: [{ start: 5, end: 5, step: 1 }],
          dayOfMonth: [{ start: 1, end: 31, step: 1 }],
          month: [{ start: 'JANUARY', end: 'DECEMBER', step: 1 }],
          year: [],
          dayOfWeek: [{ start: 'SUNDAY', end: 'SUNDAY', step: 1 }],
          comment: '',
        },
      ],
      intervals: [],
      skip: [],
    };
    expect(canonicalSpec(described as never)).toBe(canonicalSpec({ cron: '0 5 * * 0' }));
    expect(canonicalSpec({ cron: '0 5 * * 0' })).not.toBe(canonicalSpec({ cron: '0 5 * * 1' }));
    expect(canonicalSpec({ cron: '*/15 1-5 * * *' })).toContain('"minute":[{"start":0,"end":59,"step":15}]');
    expect(canonicalSpec({ every: '5m' })).toBe(
      canonicalSpec({ calendars: [], intervals: [{ every: 300_000 }], skip: [] } as never),
    );
    expect(() => canonicalSpec({ cron: '0 25 * * *' })).toThrow(/0-23/);
    expect(() => canonicalSpec({ cron: '0 5 * *' })).toThrow(/five fields/);
  });

  it('declares every schedule with a unique ID, a description and a spec that parses', () => {
    expect(new Set(SCHEDULES.map((s) => s.scheduleId)).size).toBe(SCHEDULES.length);
    for (const s of SCHEDULES) {
      expect(s.description.length).toBeGreaterThan(10);
      expect(() => canonicalSpec(s.spec)).not.toThrow();
    }
  });

  it('aims a ClickHouse DDL at another database, qualifiers only', () => {
    const ddl =
      "CREATE MATERIALIZED VIEW cadenza.plays_mv TO `cadenza`.plays (day Date) AS SELECT x FROM cadenza.play_ticks WHERE s = 'mycadenza.x'";
    expect(retarget(ddl, 'cadenza', 'drill_1')).toBe(
      "CREATE MATERIALIZED VIEW drill_1.plays_mv TO drill_1.plays (day Date) AS SELECT x FROM drill_1.play_ticks WHERE s = 'mycadenza.x'",
    );
    expect(drillDatabase('restore-drill-2026-11-29T0500Z')).toBe(
      'cadenza_drill_restore_drill_2026_11_29t0500z',
    );
    expect(drillDatabase('x'.repeat(100)).length).toBeLessThanOrEqual(63);
  });

  it('backs off 2, 4, 8 … seconds between deliveries, at most ten minutes; keys are per message', () => {
    expect([1, 2, 3, 9, 10, 30].map(backoffSeconds)).toEqual([2, 4, 8, 512, 600, 600]);
    expect(idempotencyKeyOf('sub-1:7')).toBe('outbox-sub-1:7');
  });

  it('keeps payments and the audit log for good, and drops sessions after six months', () => {
    expect(partitionPolicy('public.payment_transactions').retention).toBeNull();
    expect(partitionPolicy('public.audit_log').retention).toBeNull();
    expect(partitionPolicy('public.session_logs').retention).toBe('6 months');
    expect(partitionPolicy('public.new_table')).toMatchObject({ premake: 4, retention: null });
    for (const p of Object.values(PARTITION_POLICIES)) expect(p.premake).toBeGreaterThanOrEqual(4);
  });

  it("takes a country from the edge's header only when it is two letters", () => {
    expect(countryOf('es')).toBe('ES');
    expect(countryOf(['ES', 'FR'])).toBeNull();
    expect(countryOf('ESP')).toBeNull();
    expect(countryOf(undefined)).toBeNull();
  });

  it('notes one session per change of user or device in a request, and one per window', () => {
    const recorder = new SessionRecorder(undefined as unknown as DatabasePool, { windowMinutes: 15 });
    const noted: string[] = [];
    const note = recorder.note.bind(recorder);
    recorder.note = (u, d, c, now) => {
      noted.push(`${u}/${d}`);
      note(u, d, c, now);
    };
    const tick = (user: string, device: string) => ({ user_id: user, device_id: device }) as PlayTick;
    recorder.noteTicks(
      [tick('a', 'p'), tick('a', 'p'), tick('a', 'q'), tick('b', 'q'), tick('b', 'q')],
      'SE',
      0,
    );
    expect(noted).toEqual(['a/p', 'a/q', 'b/q']);
    const pending = () => (recorder as unknown as { pending: unknown[] }).pending.length;
    expect(pending()).toBe(3);
    recorder.noteTicks([tick('a', 'p')], 'SE', 14 * 60_000);
    expect(pending()).toBe(3);
    recorder.noteTicks([tick('a', 'p')], 'SE', 15 * 60_000);
    recorder.noteTicks([tick('a', 'p')], 'DK', 15 * 60_000 + 1);
    expect(pending()).toBe(5);
  });
});
