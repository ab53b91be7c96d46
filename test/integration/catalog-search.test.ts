import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { sql } from 'slonik';
import { z } from 'zod';
import { idAfter, readDocuments, writeDocuments } from '../../activities/catalog/search-documents';
import { chDateTime, TICK_COLUMNS } from '../../scripts/seed/load';
import { upcFor } from '../../scripts/seed/codes';
import { scheduleOptions } from '../../scripts/schedules';
import { indexAlias, SEARCH_INDICES, versionedIndex } from '../../lib/clients/opensearch';
import { migrateOpenSearch, searchMapping } from '../../sql/migrate/opensearch';
import {
  PLAY_COUNT_SYNC_WORKFLOW,
  SCHEDULES,
  SEARCH_REINDEX_WORKFLOW,
  searchReindexWorkflowId,
  TASK_QUEUE,
} from '../../workflows/catalog/contract';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';
import {
  catalogStores,
  catalogWorkers,
  newArtist,
  newListener,
  type CatalogStores,
} from '../helpers/catalog';
import { testConfig } from '../helpers/env';

/**
 * Search on a fixed corpus through the API: relevancy (text match × popularity, newer first on a tie),
 * typo tolerance, prefix suggestions, parental controls, territories, taken-down tracks; play counts from
 * ClickHouse reaching the ranking through the scheduled sync; and the re-index with an alias swap, searched
 * the whole time it runs.
 */
describe('catalog search', () => {
  let s: CatalogStores;
  let app: FastifyInstance;
  let workers: Awaited<ReturnType<typeof catalogWorkers>>;
  let listener: string;
  const ids: Record<string, string> = {};

  /** A corpus track straight into PostgreSQL (ingestion is tested elsewhere). */
  async function track(
    key: string,
    artistId: string,
    title: string,
    opts: {
      plays?: number;
      released?: string;
      explicit?: boolean;
      territories?: string[];
      status?: string;
    } = {},
  ) {
    const released = opts.released ?? '2022-01-01';
    const albumId = await s.pool.oneFirst(sql.type(z.object({ album_id: z.string() }))`
      INSERT INTO albums (artist_id, title, upc, release_date)
      VALUES (${artistId}, ${`${title} (single)`}, ${upcFor(900_000 + Object.keys(ids).length)}, ${released}::date)
      RETURNING album_id::text`);
    ids[key] = await s.pool.oneFirst(sql.type(z.object({ track_id: z.string() }))`
      INSERT INTO tracks (album_id, artist_id, title, isrc, duration_ms, explicit, checksum_sha256, status,
                          taken_down_reason, release_date, play_count, territories)
      VALUES (${albumId}, ${artistId}, ${title}, ${`QZAAA24${String(10_000 + Object.keys(ids).length)}`}, 180000,
              ${opts.explicit ?? false}, ${randomUUID().replace(/-/g, '').padEnd(64, '0')}, ${opts.status ?? 'available'},
              ${opts.status === 'taken_down' ? 'legal' : null}, ${released}::date, ${opts.plays ?? 0},
              ${opts.territories ? sql.array(opts.territories, 'bpchar') : null})
      RETURNING track_id::text`);
  }

  async function indexEverything(prefix = s.cfg.opensearch.indexPrefix) {
    for (const name of SEARCH_INDICES) {
      for (let after = '00000000-0000-0000-0000-000000000000'; ;) {
        const docs = await readDocuments(s.pool, name, idAfter(name, after), 2000);
        if (!docs.length) break;
        await writeDocuments(s.opensearch, indexAlias(name, prefix), docs);
        after = docs.at(-1)!.id;
      }
      await s.opensearch.indices.refresh({ index: indexAlias(name, prefix) });
    }
  }

  beforeAll(async () => {
    s = await catalogStores(withTempIssuer(testConfig()));
    workers = await catalogWorkers(s.cfg, s.deps);
    app = await testApp(s.cfg, {
      temporal: workers.client,
      pool: s.pool,
      catalog: { minio: s.minio, signer: s.signer, opensearch: s.opensearch },
    });
    const solar = await newArtist(s.pool, 'Solar Drift');
    const luna = await newArtist(s.pool, 'Luna Park');
    const other = await newArtist(s.pool, 'Björk Ensemble');
    await track('sunPopular', solar, 'Midnight Sun', { plays: 5000, released: '2019-05-01' });
    await track('sunCover', luna, 'Midnight Sun', { plays: 50, released: '2023-02-01' });
    await track('serenade', luna, 'Midnight Serenade', { plays: 10, released: '2021-01-01' });
    await track('tieOld', other, 'Glass Harbour', { plays: 20, released: '2018-01-01' });
    await track('tieNew', other, 'Glass Harbour', { plays: 20, released: '2024-01-01' });
    await track('explicit', luna, 'Neon Riot', { plays: 300, explicit: true });
    await track('japan', solar, 'Tokyo Drift Lights', { plays: 300, territories: ['JP'] });
    await track('gone', solar, 'Ghost Signal', { plays: 900, status: 'taken_down' });
    await track('accent', other, 'Café Déjà Vu', { plays: 1 });
    await indexEverything();
    listener = await tokenFor(s.cfg, await newListener(s.pool, { country: 'DE' }), ['listener']);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await workers?.stop();
    await s?.drop();
  }, 60_000);

  const search = async (token: string, query: string) => {
    const res = await app.inject({ method: 'GET', url: `/v1/search?${query}`, headers: bearer(token) });
    expect([res.statusCode, res.statusCode === 200 ? '' : res.body]).toEqual([200, '']);
    return (res.json().items as { id: string; type: string; title: string }[]).map((i) => i.id);
  };
  const named = (list: string[]) => list.map((id) => Object.keys(ids).find((k) => ids[k] === id) ?? id);

  it('ranks by text match times popularity, newer first on a tie', async () => {
    // Every word must match: the serenade has no "sun".
    expect(named(await search(listener, 'q=midnight+sun'))).toEqual(['sunPopular', 'sunCover']);
    expect(named(await search(listener, 'q=midnight'))).toEqual(['sunPopular', 'sunCover', 'serenade']);
    expect(named(await search(listener, 'q=glass+harbour'))).toEqual(['tieNew', 'tieOld']);
    // An exact title beats a loose match even against more plays: "serenade" finds only the serenade.
    expect(named(await search(listener, 'q=serenade'))).toEqual(['serenade']);
    // Title and artist in one query.
    expect(named(await search(listener, 'q=midnight+sun+luna'))[0]).toBe('sunCover');
  });

  it('tolerates typos and accents', async () => {
    expect(named(await search(listener, 'q=midnigth+sun'))).toEqual(['sunPopular', 'sunCover']);
    expect(named(await search(listener, 'q=midnigth'))).toEqual(['sunPopular', 'sunCover', 'serenade']);
    expect(named(await search(listener, 'q=serenad'))).toEqual(['serenade']);
    expect(named(await search(listener, 'q=cafe+deja+vu'))).toEqual(['accent']);
    const artists = await app.inject({
      method: 'GET',
      url: '/v1/search?type=artist&q=lunna+prak',
      headers: bearer(listener),
    });
    expect(artists.json().items.map((i: { title: string }) => i.title)).toEqual(['Luna Park']);
  });

  it('suggests by prefix across tracks, artists and albums', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/v1/search/suggest?q=midn',
      headers: bearer(listener),
    });
    const items = res.json().items as { type: string; text: string }[];
    expect(items.filter((i) => i.type === 'track').map((i) => i.text)).toEqual(
      expect.arrayContaining(['Midnight Sun — Solar Drift', 'Midnight Serenade — Luna Park']),
    );
    expect(items.some((i) => i.type === 'album')).toBe(true);
    const artist = await app.inject({
      method: 'GET',
      url: '/v1/search/suggest?q=sol',
      headers: bearer(listener),
    });
    expect(artist.json().items.find((i: { type: string }) => i.type === 'artist')).toMatchObject({
      text: 'Solar Drift',
    });
  });

  it("hides explicit tracks under parental controls, other markets' tracks and taken-down tracks", async () => {
    const child = await tokenFor(s.cfg, await newListener(s.pool, { parental: true }), ['listener']);
    const japan = await tokenFor(s.cfg, await newListener(s.pool, { country: 'JP' }), ['listener']);
    expect(named(await search(listener, 'q=neon+riot'))).toEqual(['explicit']);
    expect(await search(child, 'q=neon+riot')).toEqual([]);
    expect(await search(listener, 'q=neon+riot&explicit=false')).toEqual([]);
    expect(await search(listener, 'q=tokyo+drift+lights')).toEqual([]);
    expect(named(await search(japan, 'q=tokyo+drift+lights'))).toEqual(['japan']);
    expect(await search(listener, 'q=ghost+signal')).toEqual([]);
  });

  it('brings play counts from ClickHouse into PostgreSQL and the ranking, on the declared schedule', async () => {
    // 4,000 plays of the serenade, each of 7 ticks (35 s: royalty-bearing), and 500 skips of 2 ticks.
    const now = Date.now();
    const rows: string[] = [];
    const play = (trackId: string, ticks: number) => {
      const playId = randomUUID();
      const user = randomUUID();
      for (let t = 0; t < ticks; t++) {
        rows.push(
          [
            randomUUID(),
            playId,
            user,
            trackId,
            'DE',
            randomUUID(),
            t * 5000,
            chDateTime(new Date(now - 3_600_000 + t * 5000).toISOString()),
          ].join('\t'),
        );
      }
    };
    for (let i = 0; i < 4000; i++) play(ids.serenade!, 7);
    for (let i = 0; i < 500; i++) play(ids.sunCover!, 2);
    await s.clickhouse.command({
      query: `INSERT INTO play_ticks (${TICK_COLUMNS.join(', ')}) FORMAT TabSeparated\n${rows.join('\n')}\n`,
    });

    // The schedule as the contract declares it, created and triggered here.
    const declared = SCHEDULES.find((d) => d.workflowType === PLAY_COUNT_SYNC_WORKFLOW)!;
    const scheduleId = `${declared.scheduleId}-${randomUUID().slice(0, 8)}`;
    const schedule = await workers.client.schedule.create(
      scheduleOptions({ ...declared, scheduleId }, s.cfg),
    );
    try {
      await schedule.trigger();
      let result: unknown;
      for (let i = 0; i < 100 && !result; i++) {
        const d = await schedule.describe();
        const run = d.info.recentActions.at(-1)?.action;
        if (run)
          result = await workers.client.workflow
            .getHandle(run.workflow.workflowId, run.workflow.firstExecutionRunId)
            .result();
        else await new Promise((r) => setTimeout(r, 200));
      }
      expect(result).toMatchObject({ tracksChanged: 2 });
    } finally {
      await schedule.delete();
    }
    const counts = await s.pool.any(sql.type(z.object({ title: z.string(), play_count: z.number() }))`
      SELECT title, play_count FROM tracks WHERE track_id = ANY(${sql.array([ids.serenade!, ids.sunCover!], 'uuid')}) ORDER BY title`);
    expect(counts).toEqual([
      { title: 'Midnight Serenade', play_count: 4000 },
      { title: 'Midnight Sun', play_count: 0 },
    ]);
    await s.opensearch.indices.refresh({ index: indexAlias('tracks', s.cfg.opensearch.indexPrefix) });
    expect(named(await search(listener, 'q=midnight'))).toEqual(['sunPopular', 'serenade', 'sunCover']);
  }, 120_000);

  it('re-indexes into a new mapping version with an alias swap while searches go on', async () => {
    // A system on mapping v1: its own prefix, v1 indices with v1-shaped documents.
    const prefix = `${s.cfg.opensearch.indexPrefix}old-`;
    await migrateOpenSearch(s.opensearch, 1, prefix);
    const v1 = searchMapping(1);
    // Filler so the build takes a while: 3,000 more tracks.
    const filler = await newArtist(s.pool, 'Filler Orchestra');
    await s.pool.query(sql.unsafe`
      WITH al AS (INSERT INTO albums (artist_id, title, upc, release_date) VALUES (${filler}, 'Filler', ${upcFor(990_000)}, '2020-01-01') RETURNING album_id)
      INSERT INTO tracks (album_id, artist_id, title, isrc, duration_ms, checksum_sha256, status, release_date)
      SELECT al.album_id, ${filler}, 'Filler ' || n, 'QZFIL20' || lpad(n::text, 5, '0'), 120000, md5(n::text) || md5(n::text || 'x'), 'available', '2020-01-01'
      FROM al, generate_series(1, 3000) n`);
    for (const name of SEARCH_INDICES) {
      const fields = new Set(Object.keys((v1.indices[name] as { properties: object }).properties));
      for (let after = '00000000-0000-0000-0000-000000000000'; ;) {
        const docs = await readDocuments(s.pool, name, idAfter(name, after), 2000);
        if (!docs.length) break;
        const shaped = docs.map((d) => ({
          ...d,
          body: Object.fromEntries(Object.entries(d.body).filter(([k]) => fields.has(k))),
        }));
        await writeDocuments(s.opensearch, indexAlias(name, prefix), shaped);
        after = docs.at(-1)!.id;
      }
      await s.opensearch.indices.refresh({ index: indexAlias(name, prefix) });
    }
    const prefixedWorkers = await catalogWorkers(
      { ...s.cfg, opensearch: { ...s.cfg.opensearch, indexPrefix: prefix } },
      { ...s.deps, indexPrefix: prefix },
      [`${TASK_QUEUE}-reindex-test`],
    );
    try {
      const served = new Set<string>();
      const failures: string[] = [];
      let searching = true;
      const searches = (async () => {
        let n = 0;
        while (searching) {
          const { body } = await s.opensearch.search({
            index: indexAlias('tracks', prefix),
            body: { query: { match: { title: { query: 'midnight sun', operator: 'and' } } } },
          });
          const hits = body.hits.hits as { _id: string; _index: string }[];
          hits.forEach((h) => served.add(h._index));
          const found = hits.map((h) => h._id).sort();
          if (JSON.stringify(found) !== JSON.stringify([ids.sunPopular, ids.sunCover].sort()))
            failures.push(`search ${n}: ${JSON.stringify(found)}`);
          n++;
        }
        return n;
      })();
      const handle = await prefixedWorkers.client.workflow.start(SEARCH_REINDEX_WORKFLOW, {
        taskQueue: `${TASK_QUEUE}-reindex-test`,
        workflowId: searchReindexWorkflowId(2, randomUUID()),
        args: [{ version: 2 }],
      });
      // Changes while the new index fills: a retitled track and a removed one must both be right after.
      await s.pool.query(
        sql.unsafe`UPDATE tracks SET title = 'Glass Harbour (Remastered)', updated_at = now() WHERE track_id = ${ids.tieOld!}`,
      );
      await s.pool.query(sql.unsafe`DELETE FROM tracks WHERE track_id = ${ids.accent!}`);
      const result = await handle.result();
      searching = false;
      const count = await searches;
      expect(failures).toEqual([]);
      expect(count).toBeGreaterThan(20);
      expect([...served].sort()).toEqual([
        versionedIndex('tracks', 1, prefix),
        versionedIndex('tracks', 2, prefix),
      ]);
      expect(result.indices.map((i: { alias: string; to: string }) => [i.alias, i.to])).toEqual(
        SEARCH_INDICES.map((n) => [indexAlias(n, prefix), versionedIndex(n, 2, prefix)]),
      );
      // The old indices are gone; the new ones hold v2 fields and what changed meanwhile.
      for (const n of SEARCH_INDICES) {
        expect((await s.opensearch.indices.exists({ index: versionedIndex(n, 1, prefix) })).body).toBe(false);
      }
      const tracks = indexAlias('tracks', prefix);
      await s.opensearch.indices.refresh({ index: tracks });
      expect((await s.opensearch.get({ index: tracks, id: ids.tieOld! })).body._source).toMatchObject({
        title: 'Glass Harbour (Remastered)',
        genres: [],
      });
      expect((await s.opensearch.exists({ index: tracks, id: ids.accent! })).body).toBe(false);
      const { body: count2 } = await s.opensearch.count({ index: tracks });
      const rows = await s.pool.oneFirst(
        sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM tracks`,
      );
      expect(count2.count).toBe(rows);
    } finally {
      await prefixedWorkers.stop();
      await s.opensearch.indices.delete({ index: `${prefix}*` }).catch(() => undefined);
    }
  }, 180_000);
});
