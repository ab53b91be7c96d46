import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { dueAt, escalateAt, extendedDueAt } from '../../domain/compliance/deadline';
import { loadConfig, type Config } from '../../lib/config';
import { EXPORTS_EXPIRY_DAYS } from '../../sql/migrate/minio';
import type { PlayTick } from '../../domain/play-ticks/ticks';
import { EXPORT_LINK_DAYS } from '../../workflows/compliance/contract';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';
import { aTick } from '../helpers/ticks';

/**
 * The API's side of stopping an erased person's data (no stores needed): the deny-list wins over a
 * remembered token, ticks for a denied user are refused one by one, and the GDPR routes' scopes hold.
 * Also the legal clock's rules.
 */
describe('GDPR: denied subjects in the API', () => {
  let cfg: Config;
  let app: FastifyInstance;
  const denied = new Set<string>();
  const published: PlayTick[][] = [];
  beforeAll(async () => {
    cfg = withTempIssuer(loadConfig({ CADENZA_TEMPORAL_ADDRESS: '127.0.0.1:1' }));
    app = await testApp(cfg, {
      denied,
      publisher: { publish: async (ticks) => void published.push([...ticks]) },
    });
  });
  afterAll(() => app.close());

  it("refuses an erased listener's token at once, though the API remembers it as verified", async () => {
    const userId = randomUUID();
    const token = await tokenFor(cfg, userId, ['listener']);
    const send = () =>
      app.inject({
        method: 'POST',
        url: '/v1/play-ticks',
        headers: bearer(token),
        payload: { ticks: [aTick({ user_id: userId })] },
      });
    expect((await send()).statusCode).toBe(202); // verified now, remembered for up to a minute
    denied.add(userId);
    const refused = await send();
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toMatchObject({ type: 'urn:cadenza:problem:unauthorized', detail: /closed/ });
    denied.delete(userId);
  });

  it("rejects a service's ticks for an erased user, whatever the case of the ID, and keeps the others", async () => {
    const erased = randomUUID();
    denied.add(erased);
    published.length = 0;
    const token = await tokenFor(cfg, 'svc-mobile', ['service']);
    const other = aTick();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/play-ticks',
      headers: bearer(token),
      payload: { ticks: [aTick({ user_id: erased.toUpperCase() }), other, aTick({ user_id: erased })] },
    });
    expect(res.json()).toEqual({
      accepted: 1,
      rejected: [
        { index: 0, reason: 'user_id belongs to an erased account' },
        { index: 2, reason: 'user_id belongs to an erased account' },
      ],
    });
    expect(published).toEqual([[other]]);
    denied.delete(erased);
  });

  it('lets compliance and listeners (for themselves) ask; nobody else', async () => {
    const listener = randomUUID();
    const ask = async (token: string, payload: object) =>
      app.inject({ method: 'POST', url: '/v1/gdpr/erasure-requests', headers: bearer(token), payload });
    const finance = await tokenFor(cfg, 'finance-1', ['finance']);
    expect((await ask(finance, { userId: randomUUID(), reason: 'objection' })).statusCode).toBe(403);
    const own = await tokenFor(cfg, listener, ['listener']);
    expect((await ask(own, { userId: randomUUID() })).statusCode).toBe(403);
    const compliance = await tokenFor(cfg, 'dpo-1', ['compliance']);
    const noUser = await ask(compliance, { reason: 'objection' });
    expect(noUser.statusCode).toBe(400);
    expect(noUser.json().errors).toEqual([{ field: 'body.userId', message: 'required' }]);
    const badReason = await ask(compliance, { userId: randomUUID(), reason: 'because' });
    expect(badReason.statusCode).toBe(400);
    expect(badReason.json().errors).toEqual([
      {
        field: 'body.reason',
        message: expect.stringMatching(/^must be one of data_subject_request, consent_withdrawn, /),
      },
    ]);
    // No stores in this app: the route exists and says so.
    expect((await ask(compliance, { userId: randomUUID(), reason: 'objection' })).statusCode).toBe(503);
  });
});

describe('GDPR: the legal clock (Art. 12(3))', () => {
  const at = (iso: string) => Date.parse(iso);
  it('is due one calendar month after receipt, the last day of a shorter month', () => {
    expect(new Date(dueAt(at('2025-05-20T10:00:00Z'))).toISOString()).toBe('2025-06-20T10:00:00.000Z');
    expect(new Date(dueAt(at('2025-01-31T10:00:00Z'))).toISOString()).toBe('2025-02-28T10:00:00.000Z');
  });
  it('escalates at day 25, or five days before an extended due date', () => {
    const received = at('2025-05-01T00:00:00Z');
    expect(new Date(escalateAt(received, null)).toISOString()).toBe('2025-05-26T00:00:00.000Z');
    expect(new Date(escalateAt(received, at('2025-08-01T00:00:00Z'))).toISOString()).toBe(
      '2025-07-27T00:00:00.000Z',
    );
  });
  it('extends once, by one or two months', () => {
    const due = at('2025-06-01T00:00:00Z');
    expect(extendedDueAt(due, 2, false)).toEqual({ dueMs: at('2025-08-01T00:00:00Z') });
    expect(extendedDueAt(due, 3, false)).toEqual({ refused: expect.stringMatching(/1 to 2 months/) });
    expect(extendedDueAt(due, 1, true)).toEqual({ refused: expect.stringMatching(/one extension/) });
  });
  it("an export's link ends before the bucket removes its archive", () => {
    expect(EXPORT_LINK_DAYS).toBe(7);
    expect(EXPORTS_EXPIRY_DAYS).toBe(EXPORT_LINK_DAYS + 1);
  });
});
