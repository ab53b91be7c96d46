import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { accountSharing } from '../../api/queries/analytics-postgres';
import { SessionRecorder } from '../../api/lib/session-recorder';
import { createPostgresPool } from '../../lib/clients/postgres';
import type { Config } from '../../lib/config';
import { migratePostgres } from '../../sql/migrate/postgres';
import { scratchDatabases } from '../../stack/scratch';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';
import { testConfig } from '../helpers/env';
import { aTick } from '../helpers/ticks';

/**
 * Session logs from live play-ticks: the API notes each (user, device, country) behind accepted ticks, at most
 * once a window, and writes them in batches; the account-sharing query (2A) then finds a listener seen from
 * three countries. The country comes from the edge's header, else the user's own.
 */
const Session = z.object({ user_id: z.string(), ip_country: z.string(), device_id: z.string() });

describe('session logs from play-ticks', () => {
  let db: Awaited<ReturnType<typeof scratchDatabases>>;
  let cfg: Config;
  let pool: DatabasePool;
  let app: FastifyInstance;
  let recorder: SessionRecorder;
  let service: string;
  const user = async (country: string, erased = false) =>
    pool.oneFirst(sql.type(z.object({ id: z.string() }))`
      INSERT INTO users (email, display_name, country, erased_at)
      VALUES (${`s-${randomUUID()}@example.test`}, 'Session Test', ${country}, ${erased ? new Date().toISOString() : null})
      RETURNING user_id::text AS id`);
  const send = (userId: string, device: string, country?: string, token = service, n = 3) =>
    app.inject({
      method: 'POST',
      url: '/v1/play-ticks',
      headers: { ...bearer(token), ...(country === undefined ? {} : { 'x-client-country': country }) },
      payload: { ticks: Array.from({ length: n }, () => aTick({ user_id: userId, device_id: device })) },
    });
  const sessionsOf = async (userId: string) => [
    ...(await pool.any(sql.type(Session)`
        SELECT user_id::text, ip_country::text, device_id FROM session_logs WHERE user_id = ${userId}
        ORDER BY device_id, ip_country`)),
  ];

  beforeAll(async () => {
    db = await scratchDatabases(testConfig(), { clickhouse: false });
    cfg = withTempIssuer(db.config);
    await migratePostgres(cfg.postgres);
    pool = await createPostgresPool(cfg.postgres, 2);
    recorder = new SessionRecorder(pool, { windowMinutes: cfg.sessions.windowMinutes });
    app = await testApp(cfg, { pool, sessions: recorder });
    service = await tokenFor(cfg, 'player-backend', ['service']);
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await recorder?.stop();
    await pool?.end();
    await db?.drop();
  });

  it('records a session per device and country once a window, and 2A sees the sharer', async () => {
    const sharer = await user('DE');
    const homebody = await user('FR');
    const gone = await user('DE', true);
    for (let i = 0; i < 5; i++) expect((await send(sharer, 'phone', 'es')).statusCode).toBe(202);
    await send(sharer, 'laptop', 'IT');
    await send(sharer, 'tv', 'PT');
    await send(homebody, 'phone'); // no header: the user's own country
    await send(homebody, 'phone', 'XX'); // not a country: the user's own, already noted
    await send(homebody, 'tablet', 'not-a-country');
    await send(gone, 'phone', 'SE');
    // A listener's own ticks count the same way.
    const own = await tokenFor(cfg, homebody, ['listener']);
    await send(homebody, 'phone', 'FR', own);
    await recorder.flush();

    expect(await sessionsOf(sharer)).toEqual([
      { user_id: sharer, ip_country: 'IT', device_id: 'laptop' },
      { user_id: sharer, ip_country: 'ES', device_id: 'phone' },
      { user_id: sharer, ip_country: 'PT', device_id: 'tv' },
    ]);
    // Noted per header value (none, XX, FR are three), each resolved to a real country when written.
    expect(await sessionsOf(homebody)).toEqual([
      { user_id: homebody, ip_country: 'FR', device_id: 'phone' },
      { user_id: homebody, ip_country: 'FR', device_id: 'phone' },
      { user_id: homebody, ip_country: 'FR', device_id: 'phone' },
      { user_id: homebody, ip_country: 'FR', device_id: 'tablet' },
    ]);
    expect(await sessionsOf(gone)).toEqual([]);

    const flagged = await accountSharing(pool, new Date(Date.now() + 60_000));
    expect(flagged).toEqual([{ user_id: sharer, unique_countries_30d: 3 }]);
  });

  it('writes a session again once the window has passed', async () => {
    const listener = await user('NL');
    const t0 = Date.now();
    recorder.note(listener, 'phone', 'BE', t0);
    recorder.note(listener, 'phone', 'BE', t0 + cfg.sessions.windowMinutes * 60_000 - 1);
    recorder.note(listener, 'phone', 'BE', t0 + cfg.sessions.windowMinutes * 60_000);
    await recorder.flush();
    expect((await sessionsOf(listener)).map((s) => s.ip_country)).toEqual(['BE', 'BE']);
  });
});
