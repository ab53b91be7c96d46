import type { Client as OpenSearch } from '@opensearch-project/opensearch';
import { Context } from '@temporalio/activity';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { indexAlias, SEARCH_INDICES, versionedIndex, type SearchIndex } from '../../lib/clients/opensearch';
import { aliasTarget, putSearchTemplates, swapAlias } from '../../sql/migrate/opensearch';
import { deleteDocuments, idAfter, idIn, readDocuments, writeDocuments } from './search-documents';

/**
 * The search re-index with an alias swap: a new versioned index is built from PostgreSQL beside the one
 * the alias points at, the alias moves to it in one atomic request, and a catch-up pass brings over what
 * changed meanwhile (writers kept writing through the alias, into the old index, while the new one filled)
 * and removes what was deleted meanwhile. Searches never see a missing or half-built index.
 */
export interface ReindexDeps {
  pool: DatabasePool;
  opensearch: OpenSearch;
  indexPrefix: string;
}

export interface IndexMove {
  name: SearchIndex;
  alias: string;
  from: string | null;
  to: string;
}

const PAGE = 2000;
/** Longer than any catalog transaction may run (the pool's statement timeout is 60 s). */
const CATCH_UP_MARGIN_MS = 2 * 60_000;
const ID_FIELD: Record<SearchIndex, string> = {
  tracks: 'track_id',
  artists: 'artist_id',
  albums: 'album_id',
  playlists: 'playlist_id',
};

type Beat = (details: unknown) => void;
const noBeat: Beat = () => undefined;

/** Templates of the version, and an empty new index for each alias not yet on it. */
export async function prepareSearchVersion(
  deps: ReindexDeps,
  version: number,
): Promise<{ since: string; moves: IndexMove[] }> {
  const startedAt = await deps.pool.oneFirst(sql.type(z.object({ t: z.string() }))`
    SELECT to_json(now() - ${`${CATCH_UP_MARGIN_MS} milliseconds`}::interval) #>> '{}' AS t`);
  await putSearchTemplates(deps.opensearch, version, deps.indexPrefix);
  const moves: IndexMove[] = [];
  for (const name of SEARCH_INDICES) {
    const alias = indexAlias(name, deps.indexPrefix);
    const to = versionedIndex(name, version, deps.indexPrefix);
    const from = await aliasTarget(deps.opensearch, alias);
    if (from === to) continue;
    // A new index left by an interrupted re-index is rebuilt from empty: it may hold anything.
    const { body: exists } = await deps.opensearch.indices.exists({ index: to });
    if (exists) await deps.opensearch.indices.delete({ index: to });
    await deps.opensearch.indices.create({ index: to });
    moves.push({ name, alias, from, to });
  }
  return { since: startedAt, moves };
}

/** Every row of the index's table as documents into the new index, page by page (resumable). */
export async function fillSearchIndex(
  deps: ReindexDeps,
  move: Pick<IndexMove, 'name' | 'to'>,
  resume: { after: string; documents: number } | undefined,
  beat: Beat = noBeat,
): Promise<number> {
  let after = resume?.after ?? '00000000-0000-0000-0000-000000000000';
  let documents = resume?.documents ?? 0;
  for (;;) {
    const docs = await readDocuments(deps.pool, move.name, idAfter(move.name, after), PAGE);
    if (!docs.length) return documents;
    documents += await writeDocuments(deps.opensearch, move.to, docs);
    after = (docs.at(-1) as { id: string }).id;
    beat({ after, documents });
  }
}

/** After the swap: what changed since the re-index began, and documents whose rows are gone. */
export async function catchUpSearchIndex(
  deps: ReindexDeps,
  move: Pick<IndexMove, 'name' | 'to'>,
  since: string,
  beat: Beat = noBeat,
): Promise<{ written: number; removed: number }> {
  const changedTracks = sql.fragment`SELECT track_id FROM tracks WHERE updated_at >= ${since}::timestamptz`;
  const where = {
    tracks: sql.fragment`t.updated_at >= ${since}::timestamptz`,
    albums: sql.fragment`(al.created_at >= ${since}::timestamptz
      OR al.album_id IN (SELECT album_id FROM tracks WHERE track_id IN (${changedTracks})))`,
    artists: sql.fragment`(ar.created_at >= ${since}::timestamptz
      OR ar.artist_id IN (SELECT artist_id FROM tracks WHERE track_id IN (${changedTracks})))`,
    playlists: sql.fragment`p.created_at >= ${since}::timestamptz`,
  }[move.name];
  let written = 0;
  for (let after = '00000000-0000-0000-0000-000000000000'; ;) {
    const docs = await readDocuments(
      deps.pool,
      move.name,
      sql.fragment`${where} AND ${idAfter(move.name, after)}`,
      PAGE,
    );
    if (!docs.length) break;
    written += await writeDocuments(deps.opensearch, move.to, docs);
    after = (docs.at(-1) as { id: string }).id;
    beat({ written });
  }
  // Deletions leave no row to read: compare the index's IDs with the table's, a page at a time.
  let removed = 0;
  const field = ID_FIELD[move.name];
  for (let searchAfter: string[] | undefined; ;) {
    const { body } = await deps.opensearch.search({
      index: move.to,
      body: {
        size: PAGE,
        _source: false,
        sort: [{ [field]: 'asc' }],
        ...(searchAfter ? { search_after: searchAfter } : {}),
      },
    });
    const hits = body.hits.hits as { _id: string; sort?: string[] }[];
    if (!hits.length) break;
    const ids = hits.map((h) => h._id);
    const present = new Set(
      (await readDocuments(deps.pool, move.name, idIn(move.name, ids), PAGE)).map((d) => d.id),
    );
    const gone = ids.filter((id) => !present.has(id));
    await deleteDocuments(deps.opensearch, move.to, gone);
    removed += gone.length;
    searchAfter = hits.at(-1)?.sort;
    beat({ written, removed });
  }
  return { written, removed };
}

/** The old index, once nothing points at it. */
export async function dropSearchIndex(deps: ReindexDeps, index: string): Promise<void> {
  const { body: aliases } = await deps.opensearch.indices.getAlias({ index }).catch(() => ({ body: {} }));
  const held = Object.values(aliases as Record<string, { aliases?: object }>).some(
    (a) => Object.keys(a.aliases ?? {}).length > 0,
  );
  if (held) throw new Error(`${index} still has an alias; not dropping it`);
  await deps.opensearch.indices.delete({ index, ignore_unavailable: true });
}

/** The whole re-index in one call, for `npm run migrate` on a system whose aliases are behind. */
export async function rebuildSearch(deps: ReindexDeps, version: number): Promise<IndexMove[]> {
  const { since, moves } = await prepareSearchVersion(deps, version);
  for (const move of moves) {
    await fillSearchIndex(deps, move, undefined);
    await swapAlias(deps.opensearch, move.alias, move.from, move.to);
    await catchUpSearchIndex(deps, move, since);
    if (move.from) await dropSearchIndex(deps, move.from);
  }
  return moves;
}

/** The same steps as activities of the `reindexSearch` workflow (heartbeats carry the resume point). */
export function createReindexActivities(deps: ReindexDeps) {
  const beat: Beat = (d) => Context.current().heartbeat(d);
  return {
    prepareSearchVersion: (input: { version: number }) => prepareSearchVersion(deps, input.version),
    fillSearchIndex: (input: { move: IndexMove }) =>
      fillSearchIndex(
        deps,
        input.move,
        Context.current().info.heartbeatDetails as { after: string; documents: number } | undefined,
        beat,
      ),
    /** Idempotent: a retry after the swap finds the alias already on the new index. */
    async swapSearchAlias(input: { move: IndexMove }): Promise<void> {
      const current = await aliasTarget(deps.opensearch, input.move.alias);
      if (current !== input.move.to)
        await swapAlias(deps.opensearch, input.move.alias, current, input.move.to);
    },
    catchUpSearchIndex: (input: { move: IndexMove; since: string }) =>
      catchUpSearchIndex(deps, input.move, input.since, beat),
    dropSearchIndex: (input: { index: string }) => dropSearchIndex(deps, input.index),
  };
}

export type ReindexActivities = ReturnType<typeof createReindexActivities>;
