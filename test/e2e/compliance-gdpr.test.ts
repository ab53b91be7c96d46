import { createHash, randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { sql } from 'slonik';
import yauzl from 'yauzl';
import { z } from 'zod';
import { bucketName } from '../../lib/clients/minio';
import { indexAlias, SEARCH_INDICES } from '../../lib/clients/opensearch';
import { ProviderRequestError } from '../../domain/billing/payments';
import { SEARCH } from '../../workflows/compliance/contract';
import { bearer, tokenFor } from '../helpers/api';
import {
  addToPlaylist,
  befriend,
  catalog,
  gdprWorld,
  PLAN,
  person,
  playTicks,
  until,
  userObject,
  type Person,
  type World,
} from '../helpers/gdpr-world';

/**
 * GDPR erasure and export end to end: API → Temporal → worker → every store, for a heavy listener
 * (subscription running, playlists, follows, ticks through Kafka, an export made, an object kept),
 * beside other listeners whose data must not change by a byte.
 */
jest.setTimeout(300_000);
/** A listener whose one tick, sent behind the erased person's, shows the sink got past them. */
const markerUser = randomUUID();

const N = z.object({ n: z.number() });
const Sum = z.object({ currency: z.string(), total: z.string(), n: z.number() });
const Check = z.object({ n: z.number(), digest: z.string() });

describe('GDPR erasure and export (API → Temporal → worker → stores)', () => {
  let w: World;
  let heavy: Person;
  let friend: Person;
  let bystander: Person;
  let heavyToken: string;
  let compliance: string;
  let service: string;
  let subscriptionId: string;
  let paymentToken: string;

  const call = (token: string, method: 'GET' | 'POST', url: string, payload?: object) =>
    w.app.inject({ method, url, payload, headers: bearer(token) });
  const count = (q: ReturnType<typeof sql.unsafe>) => w.pool.oneFirst(sql.type(N)`${q}`);
  const chCount = async (ch: ClickHouseClient, query: string) =>
    Number((await (await ch.query({ query, format: 'JSONEachRow' })).json<{ n: string }>())[0]?.n);

  /** Row counts and a checksum per table, of the rows that do not mention the heavy user. */
  async function othersSnapshot(): Promise<Record<string, unknown>> {
    const u = heavy.userId;
    const tables = {
      users: sql.fragment`SELECT t::text AS r FROM users t`,
      subscriptions: sql.fragment`SELECT t::text AS r FROM subscriptions t`,
      subscription_history: sql.fragment`SELECT t::text AS r FROM subscription_history t
        JOIN subscriptions s USING (subscription_id) WHERE s.user_id <> ${u}`,
      payment_methods: sql.fragment`SELECT t::text AS r FROM payment_methods t`,
      payment_transactions: sql.fragment`SELECT t::text AS r FROM payment_transactions t`,
      playlists: sql.fragment`SELECT t::text AS r FROM playlists t`,
      // Without added_by: a track the person added to someone else's playlist stays, anonymous.
      playlist_tracks: sql.fragment`SELECT (t.playlist_id, t.position, t.track_id)::text AS r FROM playlist_tracks t
        WHERE NOT (t.playlist_id = ANY(${sql.array(heavy.playlistIds, 'uuid')}))`,
      user_follows: sql.fragment`SELECT t::text AS r FROM user_follows t`,
      session_logs: sql.fragment`SELECT t::text AS r FROM session_logs t`,
      user_recs: sql.fragment`SELECT t::text AS r FROM user_recs t`,
      ad_impressions: sql.fragment`SELECT t::text AS r FROM ad_impressions t`,
    };
    const out: Record<string, unknown> = {};
    for (const [table, rows] of Object.entries(tables)) {
      out[table] = await w.pool.one(sql.type(Check)`
        SELECT count(*)::int AS n, coalesce(md5(string_agg(r, '|' ORDER BY r)), '') AS digest
        FROM (${rows}) x WHERE position(${u} IN r) = 0`);
    }
    const hashes: Record<string, string> = {
      play_ticks:
        'toString(event_id), toString(play_id), toString(user_id), toString(track_id), device_id, toString(position_ms), toString(event_time)',
      plays: 'toString(play_id), toString(user_id), toString(track_id), toString(day), country',
      dim_users: 'toString(user_id), toString(signup_date), country, tier',
    };
    for (const [table, columns] of Object.entries(hashes)) {
      const [row] = await (
        await w.clickhouse.query({
          query: `SELECT count() AS n, toString(sum(cityHash64(${columns}))) AS digest FROM ${table}
            WHERE user_id NOT IN (toUUID('${u}'), toUUID('${markerUser}'))`,
          format: 'JSONEachRow',
        })
      ).json<{ n: string; digest: string }>();
      out[`clickhouse.${table}`] = row;
    }
    const { body } = await w.opensearch.search({
      index: indexAlias('playlists', w.cfg.opensearch.indexPrefix),
      body: { size: 100, query: { match_all: {} }, sort: [{ playlist_id: 'asc' }] },
    });
    out.opensearch = (body.hits.hits as { _id: string; _source: { owner_id: string } }[])
      .filter((h) => h._source.owner_id !== u)
      .map((h) => h._id);
    return out;
  }

  const financeTotals = () =>
    w.pool.any(sql.type(Sum)`
      SELECT currency, sum(amount)::text AS total, count(*)::int AS n FROM payment_transactions
      GROUP BY currency ORDER BY currency`);

  async function request(token: string, id: string) {
    const res = await call(token, 'GET', `/v1/gdpr/requests/${id}`);
    expect(res.statusCode).toBe(200);
    return res.json();
  }

  async function subscribe(p: Person, token: string): Promise<string> {
    const pm = await call(token, 'POST', '/v1/payment-methods', { testMethod: 'test_ok' });
    expect(pm.statusCode).toBe(201);
    const res = await call(token, 'POST', '/v1/subscriptions', {
      plan: PLAN,
      paymentMethodId: pm.json().paymentMethodId,
      trialDays: 0,
    });
    expect(res.statusCode).toBe(202);
    const id = res.json().subscriptionId as string;
    await until('the subscription to be paid', async () =>
      (await count(sql.unsafe`SELECT count(*)::int AS n FROM payment_transactions
        WHERE subscription_id = ${id} AND status = 'succeeded'`)) === 1
        ? true
        : undefined,
    );
    return id;
  }

  beforeAll(async () => {
    w = await gdprWorld();
    const tracks = await catalog(w.pool);
    heavy = await person(w, tracks, 'heavy');
    friend = await person(w, tracks, 'friend');
    bystander = await person(w, tracks, 'bystander');
    await befriend(w, heavy, friend);
    await addToPlaylist(w, friend, heavy);
    await userObject(w, heavy.userId);
    await userObject(w, bystander.userId);
    heavyToken = await tokenFor(w.cfg, heavy.userId, ['listener']);
    compliance = await tokenFor(w.cfg, 'dpo-anna', ['compliance']);
    service = await tokenFor(w.cfg, 'svc-mobile', ['service']);
    subscriptionId = await subscribe(heavy, heavyToken);
    await subscribe(bystander, await tokenFor(w.cfg, bystander.userId, ['listener']));
    paymentToken = await w.pool.oneFirst(sql.type(z.object({ t: z.string() }))`
      SELECT provider_token AS t FROM payment_methods WHERE user_id = ${heavy.userId}`);
    // Ticks through the API, Kafka and the sink: the heavy listener's and everyone else's.
    const ticks = [
      ...playTicks(heavy.userId, tracks[0] as string, 120),
      ...playTicks(heavy.userId, tracks[1] as string, 80, `web-${heavy.userId}`),
      ...playTicks(friend.userId, tracks[0] as string, 60),
      ...playTicks(bystander.userId, tracks[2] as string, 40),
    ];
    for (let k = 0; k < ticks.length; k += 100) {
      const res = await call(service, 'POST', '/v1/play-ticks', { ticks: ticks.slice(k, k + 100) });
      expect(res.json().accepted).toBe(Math.min(100, ticks.length - k));
    }
    await until('every tick in ClickHouse', async () =>
      (await chCount(w.clickhouse, 'SELECT uniqExact(event_id) AS n FROM play_ticks')) === ticks.length
        ? true
        : undefined,
    );
  }, 300_000);

  afterAll(async () => {
    await w?.close();
  });

  it('exports everything about the person as a zip behind a 7-day link, for them or for compliance', async () => {
    const res = await call(heavyToken, 'POST', '/v1/gdpr/export-requests', {});
    expect(res.statusCode).toBe(202);
    const { requestId, statusUrl } = res.json();
    expect(statusUrl).toBe(`/v1/gdpr/requests/${requestId}`);
    const done = await until('the export', async () => {
      const r = await request(heavyToken, requestId);
      return r.status === 'completed' ? r : undefined;
    });
    expect(done).toMatchObject({ kind: 'export', outcome: 'exported', userId: heavy.userId });
    expect(Date.parse(done.exportExpiresAt) - Date.parse(done.completedAt)).toBe(7 * 86_400_000);
    const zip = Buffer.from(await (await fetch(done.exportUrl)).arrayBuffer());
    expect(zip.length).toBe(done.exportBytes);
    expect(createHash('sha256').update(zip).digest('hex')).toBe(done.exportSha256);
    const files = await unzip(zip);
    expect(Object.keys(files).sort()).toEqual(
      expect.arrayContaining([
        'README.md',
        'postgres.json',
        'clickhouse.json',
        'opensearch.json',
        'minio.json',
      ]),
    );
    const pg = JSON.parse(files['postgres.json'] as string);
    expect(pg.account).toEqual([expect.objectContaining({ email: heavy.email, display_name: heavy.name })]);
    expect(pg.playlists).toHaveLength(2);
    expect(pg.follows).toHaveLength(2);
    expect(pg.payments).toEqual([expect.objectContaining({ amount: '9.99', status: 'succeeded' })]);
    const chJson = JSON.parse(files['clickhouse.json'] as string);
    expect(chJson.play_ticks).toHaveLength(200);
    expect(chJson.plays).toHaveLength(2);
    expect((files['csv/clickhouse.play_ticks.csv'] as string).trim().split('\n')).toHaveLength(201);
    expect((files['csv/postgres.sessions.csv'] as string).trim().split('\n')).toHaveLength(4);
    expect(JSON.parse(files['opensearch.json'] as string).playlists).toHaveLength(2);
    expect(files['README.md']).toMatch(/play_ticks/);
    // Nobody else's data: the friend appears only as an ID in the follows.
    expect(Object.values(files).join('\n')).not.toContain(friend.email);
  });

  it('answers 404 for an unknown user, and a listener cannot ask for someone else', async () => {
    const unknown = await call(compliance, 'POST', '/v1/gdpr/erasure-requests', {
      userId: randomUUID(),
      reason: 'objection',
    });
    expect(unknown.statusCode).toBe(404);
    const other = await call(heavyToken, 'POST', '/v1/gdpr/erasure-requests', { userId: friend.userId });
    expect(other.statusCode).toBe(403);
  });

  it('erases the heavy listener everywhere, verified, with a certificate; others and finance untouched', async () => {
    const before = await othersSnapshot();
    const totals = await financeTotals();
    const res = await call(compliance, 'POST', '/v1/gdpr/erasure-requests', {
      userId: heavy.userId,
      reason: 'consent_withdrawn',
    });
    expect(res.statusCode).toBe(202);
    const { requestId, workflowId } = res.json();
    expect(workflowId).toBe(`gdpr-erasure-${requestId}`);
    // A second request while it is open joins it.
    const again = await call(heavyToken, 'POST', '/v1/gdpr/erasure-requests', {});
    expect(again.json()).toMatchObject({ requestId, existing: true });

    // Once new data is stopped, the listener's token is refused, and so are ticks for them.
    await until('new data stopped', async () =>
      (await request(compliance, requestId)).stores.auth?.status === 'verified' ? true : undefined,
    );
    expect((await call(heavyToken, 'GET', `/v1/gdpr/requests/${requestId}`)).statusCode).toBe(401);
    const late = playTicks(heavy.userId, heavy.trackIds[0] as string, 5);
    const refused = await call(service, 'POST', '/v1/play-ticks', { ticks: late });
    expect(refused.json()).toEqual({
      accepted: 0,
      rejected: late.map((_, index) => ({ index, reason: 'user_id belongs to an erased account' })),
    });
    // Ticks already in Kafka (produced past the API) are dropped by the sink: a marker behind them lands.
    const marker = playTicks(markerUser, heavy.trackIds[2] as string, 1);
    await w.producer.publish([...playTicks(heavy.userId, heavy.trackIds[1] as string, 7), ...marker]);

    const done = await until(
      'the erasure',
      async () => {
        const r = await request(compliance, requestId);
        return r.status === 'completed' ? r : undefined;
      },
      180_000,
    );
    expect(done).toMatchObject({ outcome: 'erased', escalated: false, reason: 'consent_withdrawn' });
    for (const store of ['auth', 'postgres', 'clickhouse', 'opensearch', 'minio'])
      expect(done.stores[store]).toMatchObject({ status: 'verified' });
    // plays counts rows, one per play and insert until ClickHouse merges them.
    expect(done.stores.clickhouse.found).toMatchObject({ play_ticks: 200, dim_users: 1 });
    expect(done.stores.clickhouse.found.plays).toBeGreaterThanOrEqual(2);
    expect(done.stores.postgres.found).toMatchObject({ session_logs: 3, playlists: 2, user_follows: 2 });
    expect(done.stores.opensearch.found).toEqual({ playlists: 2 });
    expect(done.stores.minio.found).toMatchObject({ exports: 1, covers: 1 });
    expect(done.stores.subscriptions.found).toEqual({ running: 1 });
    await until('the marker tick', async () =>
      (await chCount(
        w.clickhouse,
        `SELECT count() AS n FROM play_ticks WHERE event_id = toUUID('${marker[0]?.event_id}')`,
      )) === 1
        ? true
        : undefined,
    );

    // Independent checks, store by store.
    const u = heavy.userId;
    const user = await w.pool.one(
      sql.type(
        z.object({
          email: z.string(),
          display_name: z.string(),
          birth_year: z.number().nullable(),
          erased: z.boolean(),
        }),
      )`SELECT email, display_name, birth_year, erased_at IS NOT NULL AS erased FROM users WHERE user_id = ${u}`,
    );
    expect(user).toEqual({
      email: `erased+${u}@erased.invalid`,
      display_name: 'Erased user',
      birth_year: null,
      erased: true,
    });
    for (const q of [
      sql.unsafe`SELECT count(*)::int AS n FROM session_logs WHERE user_id = ${u}`,
      sql.unsafe`SELECT count(*)::int AS n FROM user_follows WHERE follower_id = ${u} OR followee_id = ${u}`,
      sql.unsafe`SELECT count(*)::int AS n FROM playlists WHERE owner_id = ${u}`,
      sql.unsafe`SELECT count(*)::int AS n FROM playlist_tracks WHERE added_by = ${u}`,
      sql.unsafe`SELECT count(*)::int AS n FROM user_recs WHERE user_id = ${u}`,
      sql.unsafe`SELECT count(*)::int AS n FROM ad_impressions WHERE user_id = ${u}`,
      sql.unsafe`SELECT count(*)::int AS n FROM outbox_messages WHERE user_id = ${u}`,
      sql.unsafe`SELECT count(*)::int AS n FROM payment_methods WHERE user_id = ${u}`,
      sql.unsafe`SELECT count(*)::int AS n FROM subscriptions WHERE user_id = ${u} AND (status <> 'canceled' OR payment_method_id IS NOT NULL)`,
    ])
      expect(await count(q)).toBe(0);
    for (const table of ['play_ticks', 'plays', 'dim_users'])
      expect(
        await chCount(w.clickhouse, `SELECT count() AS n FROM ${table} WHERE user_id = toUUID('${u}')`),
      ).toBe(0);
    expect(
      await chCount(
        w.clickhouse,
        `SELECT count() AS n FROM play_ticks WHERE position(device_id, '${u}') > 0`,
      ),
    ).toBe(0);
    const { body: found } = await w.opensearch.search({
      index: SEARCH_INDICES.map((n) => indexAlias(n, w.cfg.opensearch.indexPrefix)),
      body: { query: { multi_match: { query: u, fields: ['*'], lenient: true } } },
    });
    expect(found.hits.hits).toHaveLength(0);
    for (const b of ['exports', 'covers'] as const) {
      const left: string[] = [];
      for await (const o of w.minio.listObjectsV2(
        bucketName(b, w.cfg.minio.bucketPrefix),
        `users/${u}`,
        true,
      ) as AsyncIterable<{ name: string }>)
        left.push(o.name);
      expect(left).toEqual([]);
    }
    // The subscription ended through its business cancel; the card is detached at the provider.
    const described = await w.client.workflow.getHandle(`subscription-${subscriptionId}`).describe();
    expect(described.status.name).toBe('COMPLETED');
    await expect(
      w.provider.charge({
        idempotencyKey: `after-${randomUUID()}`,
        token: paymentToken,
        amountMinor: 100,
        currency: 'EUR',
        metadata: {},
      }),
    ).rejects.toEqual(expect.any(ProviderRequestError));

    // Others untouched by a byte; finance totals the same.
    expect(await othersSnapshot()).toEqual(before);
    expect(await financeTotals()).toEqual(totals);

    // The certificate: write-once, its SHA-256 in the audit log, no personal data.
    const cert = Buffer.from(await (await fetch(done.certificateUrl)).arrayBuffer());
    const digest = createHash('sha256').update(cert).digest('hex');
    expect(digest).toBe(done.certificateSha256);
    expect(
      await count(sql.unsafe`SELECT count(*)::int AS n FROM audit_log
        WHERE action = 'gdpr.erasure.certificate' AND subject_id = ${requestId} AND details->>'sha256' = ${digest}`),
    ).toBe(1);
    const text = cert.toString('utf8');
    for (const secret of [u, heavy.email, heavy.name]) expect(text).not.toContain(secret);
    const proof = JSON.parse(text);
    expect(proof).toMatchObject({
      requestId,
      userIdSha256: createHash('sha256').update(`cadenza-gdpr-user:${u}`).digest('hex'),
      kafka: { topics: { [w.pipe.topics.ticks]: { retentionMs: expect.any(Number) } } },
    });
    expect(proof.stores.map((s: { store: string }) => s.store)).toEqual([
      'auth',
      'subscriptions',
      'payments',
      'postgres',
      'clickhouse',
      'opensearch',
      'minio',
    ]);
    // Write-once: the stored version cannot be removed.
    const bucket = bucketName('compliance', w.cfg.minio.bucketPrefix);
    const { versionId } = await w.minio.statObject(bucket, `gdpr/erasure/${requestId}.json`);
    await expect(
      w.minio.removeObject(bucket, `gdpr/erasure/${requestId}.json`, { versionId: versionId as string }),
    ).rejects.toThrow();

    // Temporal: no history of any run about the person holds their e-mail or name.
    const runs: string[] = [];
    for await (const r of w.client.workflow.list({ query: `${SEARCH.userId.name} = '${u}'` }))
      runs.push(r.workflowId);
    expect(runs).toEqual(expect.arrayContaining([`subscription-${subscriptionId}`, workflowId]));
    expect(runs.some((id) => id.startsWith('gdpr-export-'))).toBe(true);
    for (const id of runs) {
      const history = historyToJSON(await w.client.workflow.getHandle(id).fetchHistory());
      const decoded = history.replace(/"data":\s*"([A-Za-z0-9+/=]+)"/g, (_, b64: string) =>
        Buffer.from(b64, 'base64').toString('utf8'),
      );
      // The decoding works: the person's ID (not personal data here) is in every run's input.
      expect(decoded).toContain(u);
      for (const secret of [heavy.email, heavy.name, heavy.email.split('@')[0] as string])
        expect({ id, found: decoded.includes(secret) }).toEqual({ id, found: false });
    }

    // An export now answers that nothing is left; a second erasure changes nothing and proves it again.
    const exp = await call(compliance, 'POST', '/v1/gdpr/export-requests', { userId: u });
    const nothing = await until('the empty export', async () => {
      const r = await request(compliance, exp.json().requestId);
      return r.status === 'completed' ? r : undefined;
    });
    expect(nothing).toMatchObject({ outcome: 'nothing_left', exportUrl: null });
    const snapshot = await othersSnapshot();
    const second = await call(compliance, 'POST', '/v1/gdpr/erasure-requests', {
      userId: u,
      reason: 'objection',
    });
    const secondDone = await until('the second erasure', async () => {
      const r = await request(compliance, second.json().requestId);
      return r.status === 'completed' ? r : undefined;
    });
    for (const store of ['postgres', 'clickhouse', 'opensearch', 'minio'])
      expect(Object.values(secondDone.stores[store].found ?? {}).every((n) => n === 0)).toBe(true);
    expect(await othersSnapshot()).toEqual(snapshot);
    expect(await financeTotals()).toEqual(totals);
  });
});

async function unzip(zip: Buffer): Promise<Record<string, string>> {
  const zipfile = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.fromBuffer(zip, { lazyEntries: true }, (err, z) => (err ? reject(err) : resolve(z))),
  );
  const files: Record<string, string> = {};
  await new Promise<void>((resolve, reject) => {
    zipfile.on('entry', (entry: yauzl.Entry) => {
      zipfile.openReadStream(entry, (err, stream) => {
        if (err) return reject(err);
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          files[entry.fileName] = Buffer.concat(chunks).toString('utf8');
          zipfile.readEntry();
        });
      });
    });
    zipfile.on('end', resolve);
    zipfile.on('error', reject);
    zipfile.readEntry();
  });
  return files;
}
