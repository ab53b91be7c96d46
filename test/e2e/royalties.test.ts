import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { sql } from 'slonik';
import { z } from 'zod';
import { addPolicy, publishRates, untar } from '../helpers/royalties';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';
import { testConfig } from '../helpers/env';
import {
  addArtist,
  insertTicks,
  royaltiesStores,
  royaltiesWorker,
  type RoyaltiesStores,
  type TestTick,
} from '../helpers/royalties';

/**
 * Finance's month through the API: settle, refuse the starter's own approval, approve, fetch the
 * statement by its link, re-run with the same pins (the same bytes), re-run with new rates (a diff, a
 * correction carried into the next month), a held month, a re-run canceled from Temporal while it waits
 * for its cut-off — API → Temporal → worker → PostgreSQL, ClickHouse and MinIO, every action audited.
 */
jest.setTimeout(300_000);

interface Run {
  runId: string;
  status: string;
  kind: string;
  statementSha256: string | null;
  reproduced: boolean | null;
  supersededBy: string | null;
  totals: { currency: string; plays: number; amount: string; adjustment: string; payable: string }[];
  exceptionsList: { kind: string; holds: boolean }[];
  pins: { ingestionCutoff: string; rateVersion: number; policyVersion: number };
}

describe('royalty settlement end to end (API → workflow → stores)', () => {
  let s: RoyaltiesStores;
  let w: Awaited<ReturnType<typeof royaltiesWorker>>;
  let app: FastifyInstance;
  const tokens: Record<string, string> = {};
  let artistA: string;
  let trackA1: string;
  let takenDown: string;

  const call = async (who: string, method: 'GET' | 'POST', url: string, payload?: object, headers = {}) => {
    const res = await app.inject({
      method,
      url,
      payload,
      headers: { ...bearer(tokens[who] as string), ...headers },
    });
    return { status: res.statusCode, body: res.json() as Record<string, unknown> };
  };

  async function until(runId: string, statuses: string[]): Promise<Run> {
    for (let i = 0; i < 300; i++) {
      const { status, body } = await call('olga', 'GET', `/v1/royalties/runs/${runId}`);
      if (status === 200 && statuses.includes(body.status as string)) return body as unknown as Run;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`run ${runId} never reached ${statuses.join(' or ')}`);
  }

  const day = (d: string) => Date.parse(`${d}Z`);
  function plays(track: string, country: string, n: number, at: string): TestTick[] {
    const out: TestTick[] = [];
    for (let p = 0; p < n; p++) {
      const playId = randomUUID();
      const userId = randomUUID();
      for (let k = 1; k <= 6; k++) {
        const t = day(at) + p * 600_000 + k * 5000;
        out.push({
          eventId: randomUUID(),
          playId,
          userId,
          trackId: track,
          country,
          positionMs: k * 5000,
          eventTime: new Date(t).toISOString(),
          ingestedAt: new Date(t + 1000).toISOString(),
        });
      }
    }
    return out;
  }

  beforeAll(async () => {
    s = await royaltiesStores(testConfig());
    const cfg = withTempIssuer(s.config);
    const a = await addArtist(s.pool, 2);
    const b = await addArtist(s.pool, 1);
    const c = await addArtist(s.pool, 1);
    const gone = await addArtist(s.pool, 1);
    takenDown = gone.trackIds[0] as string;
    await s.pool.query(
      sql.unsafe`UPDATE tracks SET status = 'taken_down', taken_down_reason = 'legal', taken_down_at = now() WHERE track_id = ${takenDown}`,
    );
    artistA = a.artistId;
    trackA1 = a.trackIds[0] as string;
    await publishRates(s.pool, 1, [
      { artistId: a.artistId, country: 'US', rate: '0.004000', currency: 'USD' },
      { artistId: a.artistId, country: 'DE', rate: '0.003333', currency: 'EUR' },
      { artistId: b.artistId, country: 'US', rate: '0.005000', currency: 'USD' },
    ]);
    await addPolicy(s.pool, 2, { minTrailingStreams: 0 });
    await insertTicks(s.clickhouse, [
      ...plays(trackA1, 'US', 7, '2026-08-03T10:00:00'),
      ...plays(trackA1, 'DE', 5, '2026-08-04T10:00:00'),
      ...plays(a.trackIds[1] as string, 'US', 3, '2026-08-05T10:00:00'),
      ...plays(b.trackIds[0] as string, 'US', 4, '2026-08-06T10:00:00'),
      ...plays(trackA1, 'US', 3, '2026-09-03T10:00:00'),
      ...plays(c.trackIds[0] as string, 'US', 2, '2026-07-03T10:00:00'),
      ...plays(trackA1, 'US', 2, '2026-07-04T10:00:00'),
    ]);
    w = await royaltiesWorker(s.config, s.deps);
    for (const month of ['2026-07', '2026-08', '2026-09']) await w.clearMonth(month);
    app = await testApp(cfg, { temporal: w.client, pool: s.pool, minio: s.deps.minio });
    tokens.alice = await tokenFor(cfg, 'finance-alice', ['finance']);
    tokens.bob = await tokenFor(cfg, 'finance-bob', ['finance']);
    tokens.carol = await tokenFor(cfg, 'finance-carol', ['finance']);
    tokens.olga = await tokenFor(cfg, 'operator-olga', ['operator']);
    tokens.lee = await tokenFor(cfg, randomUUID(), ['listener']);
  });
  afterAll(async () => {
    await app?.close();
    await w?.stop();
    await s?.drop();
  });

  let approved: Run;

  it('settles a closed month; the starter may not approve it, another finance user does, once', async () => {
    expect(
      (await call('alice', 'POST', '/v1/royalties/settlements', { month: '2099-01' })).body,
    ).toMatchObject({
      status: 409,
      type: 'urn:cadenza:problem:month-not-closed',
    });
    expect((await call('olga', 'POST', '/v1/royalties/settlements', { month: '2026-08' })).status).toBe(403);
    expect((await call('alice', 'POST', '/v1/royalties/settlements', { month: '2026-8' })).status).toBe(400);

    const started = await call('alice', 'POST', '/v1/royalties/settlements', { month: '2026-08' });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({
      workflowId: 'royalty-settlement-2026-08',
      rerun: 0,
      existing: false,
    });
    const again = await call('bob', 'POST', '/v1/royalties/settlements', { month: '2026-08' });
    expect(again.body).toMatchObject({ runId: started.body.runId, existing: true });
    const runId = started.body.runId as string;

    const run = await until(runId, ['awaiting_approval']);
    // The settlement copied the catalog's tracks to ClickHouse with their status: a taken-down track stays so.
    const dim = await s.clickhouse.query({
      query: `SELECT status FROM dim_tracks FINAL WHERE track_id = '${takenDown}'`,
      format: 'JSONEachRow',
    });
    expect(await dim.json()).toEqual([{ status: 'taken_down' }]);
    expect(run.pins).toMatchObject({
      ingestionCutoff: '2026-09-01T02:00:00.000Z',
      rateVersion: 1,
      policyVersion: 2,
    });
    // 10 US plays of A at 0.004 and 4 of B at 0.005 → 0.06 USD; 5 DE plays of A at 0.003333 → 0.016665 → 0.02 EUR.
    expect(run.totals).toEqual([
      {
        currency: 'EUR',
        artists: 1,
        lines: 1,
        plays: 5,
        amount: '0.02',
        adjustment: '0.00',
        payable: '0.02',
      },
      {
        currency: 'USD',
        artists: 2,
        lines: 3,
        plays: 14,
        amount: '0.06',
        adjustment: '0.00',
        payable: '0.06',
      },
    ]);
    expect((await call('lee', 'GET', `/v1/royalties/runs/${runId}`)).status).toBe(403);

    const own = await call('alice', 'POST', `/v1/royalties/runs/${runId}/approve`);
    expect(own.body).toMatchObject({ status: 403, type: 'urn:cadenza:problem:separation-of-duties' });
    const ok = await call('bob', 'POST', `/v1/royalties/runs/${runId}/approve`);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ runId, status: 'approved', decidedBy: 'finance-bob' });
    const twice = await call('carol', 'POST', `/v1/royalties/runs/${runId}/approve`);
    expect(twice.body).toMatchObject({ status: 409, type: 'urn:cadenza:problem:not-awaiting-approval' });
    approved = await until(runId, ['approved']);

    const audit = await s.pool.any(sql.type(z.object({ actor: z.string(), action: z.string() }))`
      SELECT actor, action FROM audit_log WHERE subject_id = ${runId} ORDER BY audit_id`);
    expect(audit).toEqual(
      expect.arrayContaining([
        { actor: 'finance-alice', action: 'royalties.settlement.start' },
        { actor: 'finance-alice', action: 'royalties.settlement.approve.refused' },
        { actor: 'finance-bob', action: 'royalties.settlement.approve' },
        { actor: 'finance-carol', action: 'royalties.settlement.approve.refused' },
        { actor: `workflow:royalty-settlement-2026-08`, action: 'royalties.settlement.approved' },
      ]),
    );
  });

  it('links the statement for a few minutes; its bytes are the SHA-256 on the run', async () => {
    const link = await call('olga', 'GET', `/v1/royalties/runs/${approved.runId}/statement`);
    expect(link.status).toBe(200);
    expect(link.body).toMatchObject({ sha256: approved.statementSha256, contentType: 'application/x-tar' });
    const expires = Date.parse(link.body.expiresAt as string) - Date.now();
    expect(expires).toBeGreaterThan(200_000);
    expect(expires).toBeLessThanOrEqual(300_000);
    const bytes = Buffer.from(await (await fetch(link.body.url as string)).arrayBuffer());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(approved.statementSha256);
    const files = await untar(bytes);
    expect(files.get(`artists/${artistA}.csv`)).toContain(
      `play,${trackA1},US,7,0.004000,USD,0.028000,0.03\n`,
    );
    // A link for a URL without its signature is refused by the store.
    expect((await fetch((link.body.url as string).split('?')[0] as string)).status).toBe(403);
  });

  it('a same-pins re-run reproduces the statement byte for byte, without superseding anything', async () => {
    const rerun = await call('alice', 'POST', '/v1/royalties/settlements/2026-08/reruns', {
      reason: 'auditor asked',
    });
    expect(rerun.status).toBe(202);
    expect(rerun.body).toMatchObject({ rerun: 1, workflowId: 'royalty-settlement-2026-08-rerun-1' });
    const run = await until(rerun.body.runId as string, ['verified']);
    expect(run).toMatchObject({
      kind: 'verification',
      reproduced: true,
      statementSha256: approved.statementSha256,
    });
    expect((await until(approved.runId, ['approved'])).supersededBy).toBeNull();
  });

  it('new rates: one re-run at a time, a diff per artist and track, a correction carried into the next month', async () => {
    await publishRates(s.pool, 2, [{ artistId: artistA, country: 'US', rate: '0.006000', currency: 'USD' }]);
    const body = { reason: 'rates for A in the US were corrected', repin: { rateVersion: 2 } };
    const [one, two] = await Promise.all([
      call('alice', 'POST', '/v1/royalties/settlements/2026-08/reruns', body),
      call('alice', 'POST', '/v1/royalties/settlements/2026-08/reruns', {
        ...body,
        reason: 'the same, twice',
      }),
    ]);
    const statuses = [one.status, two.status].sort();
    expect(statuses).toEqual([202, 409]);
    const started = one.status === 202 ? one : two;
    const refused = one.status === 202 ? two : one;
    expect(refused.body.type).toBe('urn:cadenza:problem:settlement-in-progress');
    const correction = await until(started.body.runId as string, ['awaiting_approval']);
    expect(correction).toMatchObject({ kind: 'correction', pins: { rateVersion: 2 } });

    const diff = await call(
      'bob',
      'GET',
      `/v1/royalties/runs/${correction.runId}/diff?against=${approved.runId}`,
    );
    expect(diff.body.artists).toEqual([
      {
        artistId: artistA,
        currency: 'USD',
        playsBefore: 10,
        playsAfter: 10,
        amountBefore: '0.04',
        amountAfter: '0.06',
        delta: '0.02',
      },
    ]);
    expect((diff.body.tracks as { trackId: string; delta: string }[]).map((t) => t.trackId)).toContain(
      trackA1,
    );
    expect(
      (await call('bob', 'GET', `/v1/royalties/runs/${correction.runId}/diff?against=${randomUUID()}`))
        .status,
    ).toBe(404);

    const ok = await call('bob', 'POST', `/v1/royalties/runs/${correction.runId}/approve`);
    expect(ok.body).toMatchObject({ status: 'carried_forward' });
    // The approved month never changed; it is superseded by the correction, whose difference moves on.
    const first = await until(approved.runId, ['approved']);
    expect(first).toMatchObject({
      statementSha256: approved.statementSha256,
      supersededBy: correction.runId,
    });
    expect(first.totals).toEqual(approved.totals);
    const adjustments = await s.pool.any(sql.type(
      z.object({ artist_id: z.string(), amount: z.string(), target: z.string() }),
    )`SELECT artist_id::text AS artist_id, amount::text AS amount, to_char(target_month, 'YYYY-MM') AS target
      FROM settlement_adjustments WHERE source_run_id = ${correction.runId}`);
    expect(adjustments).toEqual([{ artist_id: artistA, amount: '0.02', target: '2026-09' }]);

    const months = await call('olga', 'GET', '/v1/royalties/settlements/2026-08');
    expect((months.body.runs as Run[]).map((r) => [r.kind, r.status])).toEqual([
      ['correction', 'carried_forward'],
      ['verification', 'verified'],
      ['settlement', 'approved'],
    ]);

    // September pays A's 3 plays at the new rate and the 0.02 carried from August.
    const sept = await call('bob', 'POST', '/v1/royalties/settlements', { month: '2026-09' });
    const run = await until(sept.body.runId as string, ['awaiting_approval']);
    expect(run.totals).toEqual([
      {
        currency: 'USD',
        artists: 1,
        lines: 1,
        plays: 3,
        amount: '0.02',
        adjustment: '0.02',
        payable: '0.04',
      },
    ]);
    const link = await call('bob', 'GET', `/v1/royalties/runs/${run.runId}/statement`);
    const files = await untar(Buffer.from(await (await fetch(link.body.url as string)).arrayBuffer()));
    expect(files.get(`artists/${artistA}.csv`)).toContain('adjustment,2026-08,,,,USD,0.02,0.02\n');
    expect(files.get(`artists/${artistA}.csv`)).toContain('payable,,,,,USD,,0.04\n');
    expect((await call('alice', 'POST', `/v1/royalties/runs/${run.runId}/approve`)).body).toMatchObject({
      status: 'approved',
    });
  });

  it('a month with a missing rate is held: approval refused, rejected with its reason', async () => {
    const started = await call('alice', 'POST', '/v1/royalties/settlements', { month: '2026-07' });
    const run = await until(started.body.runId as string, ['held']);
    expect(run.exceptionsList).toEqual([expect.objectContaining({ kind: 'missing_rate', holds: true })]);
    expect((await call('bob', 'POST', `/v1/royalties/runs/${run.runId}/approve`)).body).toMatchObject({
      status: 409,
      type: 'urn:cadenza:problem:settlement-held',
    });
    expect(
      (await call('bob', 'POST', `/v1/royalties/runs/${run.runId}/reject`, { reason: 'x' })).status,
    ).toBe(400);
    const rejected = await call('bob', 'POST', `/v1/royalties/runs/${run.runId}/reject`, {
      reason: 'artist C has no contract yet',
    });
    expect(rejected.body).toMatchObject({ status: 'rejected', decidedBy: 'finance-bob' });
  });

  it('a re-run waiting for a later cut-off, canceled from Temporal, ends canceled; the month stays as it was', async () => {
    const cutoff = new Date((Math.floor(Date.now() / 3_600_000) + 3) * 3_600_000).toISOString();
    const rerun = await call('alice', 'POST', '/v1/royalties/settlements/2026-09/reruns', {
      reason: 'wait for a late feed',
      repin: { ingestionCutoff: cutoff },
    });
    expect(rerun.status).toBe(202);
    const runId = rerun.body.runId as string;
    for (let i = 0; i < 100; i++) {
      const p = (await call('olga', 'GET', `/v1/royalties/runs/${runId}`)).body.progress as {
        phase?: string;
      } | null;
      if (p?.phase === 'waiting_for_cutoff') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const another = await call('bob', 'POST', '/v1/royalties/settlements/2026-09/reruns', {
      reason: 'me too',
    });
    expect(another.body).toMatchObject({ status: 409, type: 'urn:cadenza:problem:settlement-in-progress' });
    const cancel = await call('olga', 'POST', `/v1/workflows/${rerun.body.workflowId as string}/cancel`);
    expect(cancel.status).toBe(202);
    const run = await until(runId, ['canceled']);
    expect(run.statementSha256).toBeNull();
    const months = await call('olga', 'GET', '/v1/royalties/settlements/2026-09');
    expect((months.body.runs as Run[]).map((r) => r.status)).toEqual(['canceled', 'approved']);
    expect((await call('alice', 'POST', `/v1/royalties/runs/${runId}/approve`)).body).toMatchObject({
      status: 409,
    });
  });
});
