import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { applySchedules, canonicalSpec } from '../../scripts/schedules';
import type { Config } from '../../lib/config';
import { SCHEDULES, type ScheduleDeclaration } from '../../workflows/schedules';
import { testConfig } from '../helpers/env';

/**
 * `npm run schedules` against the Temporal server: every declared schedule is created with its declared
 * spec, action and policies; a second run changes nothing; a changed declaration updates the schedule and
 * leaves an operator's pause alone. (IDs get a prefix of this run's own, so runs never meet.)
 */
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** `10m` → 600000: a declared interval as the server's next firings are apart. */
const msOf = (every: string) => Number(every.slice(0, -1)) * UNIT_MS[every.slice(-1) as keyof typeof UNIT_MS];

describe('schedules as declared', () => {
  let cfg: Config;
  let connection: Connection;
  let client: Client;
  const prefix = `t-${randomUUID().slice(0, 8)}-`;
  const declared: ScheduleDeclaration[] = SCHEDULES.map((s) => ({ ...s, scheduleId: prefix + s.scheduleId }));

  beforeAll(async () => {
    cfg = testConfig();
    connection = await Connection.connect({ address: cfg.temporal.address });
    client = new Client({ connection, namespace: cfg.temporal.namespace });
  });
  afterAll(async () => {
    for (const d of declared)
      await client.schedule
        .getHandle(d.scheduleId)
        .delete()
        .catch(() => undefined);
    await connection?.close();
  });

  it('creates each schedule with the declared spec and action, and a second run changes nothing', async () => {
    const first = await applySchedules(client, cfg, declared, { createPaused: true });
    expect(first).toEqual(declared.map((d) => ({ scheduleId: d.scheduleId, action: 'created' })));
    for (const d of declared) {
      const found = await client.schedule.getHandle(d.scheduleId).describe();
      expect([d.scheduleId, canonicalSpec(found.spec)]).toEqual([d.scheduleId, canonicalSpec(d.spec)]);
      expect(found.spec.timezone ?? '').toBe('');
      expect(found.action).toMatchObject({
        type: 'startWorkflow',
        workflowType: d.workflowType,
        workflowId: d.workflowId,
        taskQueue: d.taskQueue,
        args: d.args(cfg),
      });
      expect(found.policies).toMatchObject({ overlap: 'SKIP', catchupWindow: 3_600_000 });
      expect(found.memo).toEqual({ description: d.description });
      // The server's own reading of the spec: the next firings fall where the declaration says, in UTC.
      const next = found.info.nextActionTimes.map((t) => t.getTime());
      if ('every' in d.spec) expect(next[1]! - next[0]!).toBe(msOf(d.spec.every));
      else {
        const [minute, hour] = d.spec.cron.split(' ').map(Number);
        for (const t of found.info.nextActionTimes)
          expect([t.getUTCHours(), t.getUTCMinutes()]).toEqual([hour, minute]);
      }
    }
    expect(await applySchedules(client, cfg, declared)).toEqual(
      declared.map((d) => ({ scheduleId: d.scheduleId, action: 'unchanged' })),
    );
  });

  it('updates a schedule whose declaration changed, keeping it paused, then is quiet again', async () => {
    const [interval, cron] = [declared[0]!, declared[1]!];
    const handle = client.schedule.getHandle(cron.scheduleId);
    await handle.pause('an operator looks into something');
    const changed: ScheduleDeclaration[] = declared.map((d) =>
      d === cron
        ? { ...d, spec: { cron: '45 2 * * 1-5' } }
        : d === interval
          ? { ...d, args: () => [{ overlapSeconds: 900 }] }
          : d,
    );
    const applied = await applySchedules(client, cfg, changed);
    expect(applied.filter((a) => a.action !== 'unchanged')).toEqual([
      { scheduleId: interval.scheduleId, action: 'updated' },
      { scheduleId: cron.scheduleId, action: 'updated' },
    ]);
    const found = await handle.describe();
    expect(found.state).toEqual({ paused: true, note: 'an operator looks into something' });
    expect(canonicalSpec(found.spec)).toBe(canonicalSpec({ cron: '45 2 * * 1-5' }));
    for (const t of found.info.nextActionTimes) expect([1, 2, 3, 4, 5]).toContain(t.getUTCDay());
    expect((await client.schedule.getHandle(interval.scheduleId).describe()).action).toMatchObject({
      args: [{ overlapSeconds: 900 }],
    });
    expect((await applySchedules(client, cfg, changed)).every((a) => a.action === 'unchanged')).toBe(true);
  });
});
