import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '../../lib/config';
import { UnavailableError } from '../../lib/errors';
import type { PlayTick } from '../../domain/play-ticks/ticks';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';
import { aTick } from '../helpers/ticks';

/** POST /v1/play-ticks: per-tick checks and ownership (the Kafka side is in the integration test). */
const tick = aTick;

describe('POST /v1/play-ticks', () => {
  let cfg: Config;
  let app: FastifyInstance;
  const published: PlayTick[][] = [];
  let failNext = false;
  beforeAll(async () => {
    cfg = withTempIssuer(loadConfig({ CADENZA_TEMPORAL_ADDRESS: '127.0.0.1:1' }));
    app = await testApp(cfg, {
      publisher: {
        publish: async (ticks) => {
          if (failNext) throw new UnavailableError('The event log is not reachable; retry shortly.');
          published.push([...ticks]);
        },
      },
    });
  });
  afterAll(() => app.close());
  beforeEach(() => {
    published.length = 0;
    failNext = false;
  });

  const post = async (token: string, ticks: unknown[]) =>
    app.inject({ method: 'POST', url: '/v1/play-ticks', headers: bearer(token), payload: { ticks } });

  it('accepts valid ticks, names each rejected one with its reason, and publishes only the valid', async () => {
    const token = await tokenFor(cfg, 'svc-mobile', ['service']);
    const good = tick();
    const res = await post(token, [
      good,
      tick({ country: 'se' }),
      tick({ position_ms: -5 }),
      tick({ event_time: new Date(Date.now() + 3_600_000).toISOString() }),
      { ...tick(), extra: 1 },
      'not an object',
      tick({ event_id: 'nope' }),
    ]);
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body.accepted).toBe(1);
    expect(body.rejected.map((r: { index: number }) => r.index)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(body.rejected.map((r: { reason: string }) => r.reason)).toEqual([
      expect.stringMatching(/country/),
      expect.stringMatching(/position_ms/),
      expect.stringMatching(/future/),
      expect.stringMatching(/unknown field extra/),
      expect.stringMatching(/JSON object/),
      expect.stringMatching(/event_id/),
    ]);
    expect(published).toEqual([[good]]);
  });

  it("refuses a listener's tick for someone else, and accepts their own", async () => {
    const me = randomUUID();
    const token = await tokenFor(cfg, me, ['listener']);
    const res = await post(token, [tick({ user_id: me }), tick({ user_id: randomUUID() })]);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({
      accepted: 1,
      rejected: [{ index: 1, reason: expect.stringMatching(/subject/) }],
    });
    expect(published.flat().map((t) => t.user_id)).toEqual([me]);
  });

  it('refuses tokens without listener or service scope, and more than 500 ticks', async () => {
    const finance = await tokenFor(cfg, 'f', ['finance']);
    expect((await post(finance, [tick()])).statusCode).toBe(403);
    const svc = await tokenFor(cfg, 'svc', ['service']);
    const tooMany = await post(
      svc,
      Array.from({ length: 501 }, () => tick()),
    );
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json().errors[0].field).toBe('body.ticks');
    expect(published).toEqual([]);
  });

  it('answers 503 problem+json when the event log does not acknowledge', async () => {
    const svc = await tokenFor(cfg, 'svc', ['service']);
    failNext = true;
    const res = await post(svc, [tick()]);
    expect(res.statusCode).toBe(503);
    expect(res.json().type).toBe('urn:cadenza:problem:unavailable');
    expect(res.headers['retry-after']).toBe(String(cfg.api.retryAfterSeconds));
  });
});
