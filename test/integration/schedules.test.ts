import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { ensureSchedules, type ScheduleDeclaration } from '../../lib/schedules';
import { SETTLEMENT_SCHEDULE_ID, SCHEDULED_WORKFLOW, TASK_QUEUE } from '../../workflows/royalties/contract';
import { SCHEDULES } from '../../workflows/schedules';
import { testConfig } from '../helpers/env';

/** Schedules from declarations, on the real Temporal server: made once, a second run changes nothing. */
describe('Temporal Schedules from the contracts', () => {
  const cfg = testConfig();
  let connection: Connection;
  let client: Client;
  const made: string[] = [];

  beforeAll(async () => {
    connection = await Connection.connect({ address: cfg.temporal.address });
    client = new Client({ connection, namespace: cfg.temporal.namespace });
  });
  afterAll(async () => {
    for (const id of made)
      await client.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
    await connection?.close();
  });

  it('creates a declared schedule, leaves it alone when run again, updates it when the declaration changes', async () => {
    const id = `test-schedule-${randomUUID()}`;
    made.push(id);
    const declared: ScheduleDeclaration = {
      scheduleId: id,
      note: 'a test schedule',
      calendar: { dayOfMonth: 1, hour: 2 },
      workflowType: SCHEDULED_WORKFLOW,
      workflowId: `${id}-run`,
      taskQueue: TASK_QUEUE,
      args: (c) => [{ shards: c.royalties.shards, latenessHours: 2, reminderDays: 3 }],
    };
    expect(await ensureSchedules(client, [declared], cfg)).toEqual([{ scheduleId: id, outcome: 'created' }]);
    const handle = client.schedule.getHandle(id);
    const first = await handle.describe();
    // An operator pauses it (with a note of their own): the run puts the declared note back and keeps the
    // pause; a run after that writes nothing at all.
    await handle.pause('paused by the test');
    expect(await ensureSchedules(client, [declared], cfg)).toEqual([{ scheduleId: id, outcome: 'updated' }]);
    const restored = await handle.describe();
    expect(restored.state).toMatchObject({ paused: true, note: first.state.note });
    expect(await ensureSchedules(client, [declared], cfg)).toEqual([
      { scheduleId: id, outcome: 'unchanged' },
    ]);
    expect((await handle.describe()).info.lastUpdatedAt).toEqual(restored.info.lastUpdatedAt);

    const moved = { ...declared, calendar: { dayOfMonth: 2, hour: 3 } };
    expect(await ensureSchedules(client, [moved], cfg)).toEqual([{ scheduleId: id, outcome: 'updated' }]);
    const after = await handle.describe();
    expect(after.state.paused).toBe(true);
    expect(after.spec.calendars?.[0]).toMatchObject({ dayOfMonth: [{ start: 2, end: 2, step: 1 }] });
    expect(first.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: SCHEDULED_WORKFLOW,
      taskQueue: TASK_QUEUE,
    });
    expect(await ensureSchedules(client, [moved], cfg)).toEqual([{ scheduleId: id, outcome: 'unchanged' }]);
  });

  it('the monthly settlement is declared for the 1st at 02:00 UTC, and starts the scheduled settlement workflow', async () => {
    const monthly = SCHEDULES.find((s) => s.scheduleId === SETTLEMENT_SCHEDULE_ID) as ScheduleDeclaration;
    const id = `test-${SETTLEMENT_SCHEDULE_ID}-${randomUUID()}`;
    made.push(id);
    await ensureSchedules(client, [{ ...monthly, scheduleId: id }], cfg);
    const d = await client.schedule.getHandle(id).describe();
    const next = d.info.nextActionTimes.map((t) => t.toISOString());
    expect(next.length).toBeGreaterThan(1);
    for (const t of next) expect(t).toMatch(/^\d{4}-\d{2}-01T02:00:00\.000Z$/);
    expect(d.action).toMatchObject({
      workflowType: SCHEDULED_WORKFLOW,
      workflowId: 'royalty-settlement-scheduled',
    });
    expect(d.action.type === 'startWorkflow' && d.action.args).toEqual([
      {
        shards: cfg.royalties.shards,
        latenessHours: cfg.royalties.latenessHours,
        reminderDays: cfg.royalties.reminderDays,
      },
    ]);
  });
});
