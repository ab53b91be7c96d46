import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { Client as OpenSearch } from '@opensearch-project/opensearch';
import type { DatabasePool } from 'slonik';
import type { Principal } from '../auth/scopes';
import { listenerById } from '../queries/catalog';
import {
  searchRequest,
  suggestRequest,
  typeOfIndex,
  type SearchFilters,
  type SearchType,
} from '../queries/search';
import { withProblems } from '../schemas';

/**
 * Search over the catalog's search documents (OpenSearch, kept in step by the catalog workflows). A
 * listener's parental controls and market come from PostgreSQL and filter every answer; `explicit=false`
 * filters for anyone.
 */
export interface SearchApiDeps {
  pool: DatabasePool;
  opensearch: OpenSearch;
  indexPrefix: string;
}

const Item = Type.Object({
  type: Type.Union([
    Type.Literal('track'),
    Type.Literal('artist'),
    Type.Literal('album'),
    Type.Literal('playlist'),
  ]),
  id: Type.String({ format: 'uuid' }),
  title: Type.String(),
  artistId: Type.Optional(Type.String()),
  artistName: Type.Optional(Type.String()),
  albumId: Type.Optional(Type.String()),
  albumTitle: Type.Optional(Type.String()),
  explicit: Type.Optional(Type.Boolean()),
  durationMs: Type.Optional(Type.Integer()),
  releaseDate: Type.Optional(Type.String()),
  genres: Type.Optional(Type.Array(Type.String())),
  playCount: Type.Optional(Type.Integer()),
  trackCount: Type.Optional(Type.Integer()),
  score: Type.Number(),
});
type Item = Static<typeof Item>;

type Hit = { _index: string; _id: string; _score: number | null; _source: Record<string, unknown> };

function itemOf(type: SearchType, h: Hit): Item {
  const s = h._source;
  const str = (k: string) => (typeof s[k] === 'string' ? (s[k] as string) : undefined);
  const num = (k: string) => (typeof s[k] === 'number' ? (s[k] as number) : undefined);
  const base = { type, id: h._id, score: h._score ?? 0 };
  switch (type) {
    case 'track':
      return {
        ...base,
        title: str('title') ?? '',
        artistId: str('artist_id'),
        artistName: str('artist_name'),
        albumId: str('album_id'),
        albumTitle: str('album_title'),
        explicit: s.explicit === true,
        durationMs: num('duration_ms'),
        releaseDate: str('release_date'),
        genres: Array.isArray(s.genres) ? (s.genres as string[]) : [],
        playCount: num('play_count'),
      };
    case 'artist':
      return {
        ...base,
        title: str('name') ?? '',
        playCount: num('play_count'),
        trackCount: num('track_count'),
      };
    case 'album':
      return {
        ...base,
        title: str('title') ?? '',
        artistId: str('artist_id'),
        artistName: str('artist_name'),
        releaseDate: str('release_date'),
        playCount: num('play_count'),
        trackCount: num('track_count'),
      };
    case 'playlist':
      return {
        ...base,
        title: str('title') ?? '',
        playCount: num('play_count'),
        trackCount: num('track_count'),
      };
  }
}

const Query = Type.String({ minLength: 1, maxLength: 200 });

export const searchRoutes: FastifyPluginAsyncTypebox<SearchApiDeps> = async (app, deps) => {
  /** Listeners are filtered by their own settings; `explicit=false` asks for the same filter explicitly. */
  async function filtersFor(p: Principal, explicit: boolean | undefined): Promise<SearchFilters> {
    const listener = p.scopes.includes('listener') ? await listenerById(deps.pool, p.sub) : null;
    return {
      excludeExplicit: explicit === false || Boolean(listener?.parental_controls),
      country: listener?.country ?? null,
    };
  }

  app.get(
    '/search',
    {
      config: { scopes: ['listener', 'creator', 'operator', 'service'] },
      schema: {
        tags: ['search'],
        summary: 'Search tracks, artists, albums or playlists (typo-tolerant, popularity-weighted)',
        querystring: Type.Object({
          q: Query,
          type: Type.Optional(
            Type.Union([
              Type.Literal('track'),
              Type.Literal('artist'),
              Type.Literal('album'),
              Type.Literal('playlist'),
            ]),
          ),
          explicit: Type.Optional(Type.Boolean({ description: 'false leaves explicit tracks out' })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50, default: 20 })),
          offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, default: 0 })),
        }),
        response: withProblems({ 200: Type.Object({ items: Type.Array(Item) }) }),
      },
    },
    async (request) => {
      const { q, explicit, limit = 20, offset = 0 } = request.query;
      const type = request.query.type ?? 'track';
      const filters = await filtersFor(request.principal, explicit);
      const { body } = await deps.opensearch.search(
        searchRequest(type, q, filters, { size: limit, from: offset }, deps.indexPrefix),
      );
      return { items: (body.hits.hits as Hit[]).map((h) => itemOf(type, h)) };
    },
  );

  app.get(
    '/search/suggest',
    {
      config: { scopes: ['listener', 'creator', 'operator', 'service'] },
      schema: {
        tags: ['search'],
        summary: 'Suggestions as the user types: tracks, artists and albums by prefix',
        querystring: Type.Object({
          q: Query,
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 20, default: 8 })),
        }),
        response: withProblems({
          200: Type.Object({
            items: Type.Array(
              Type.Object({
                type: Type.String(),
                id: Type.String(),
                text: Type.String(),
                score: Type.Number(),
              }),
            ),
          }),
        }),
      },
    },
    async (request) => {
      const filters = await filtersFor(request.principal, undefined);
      const { body } = await deps.opensearch.search(
        suggestRequest(request.query.q, filters, request.query.limit ?? 8, deps.indexPrefix),
      );
      const items = [];
      for (const h of body.hits.hits as Hit[]) {
        const type = typeOfIndex(h._index, deps.indexPrefix);
        if (!type) continue;
        const s = h._source;
        const text =
          type === 'artist'
            ? s.name
            : type === 'track'
              ? `${String(s.title)} — ${String(s.artist_name)}`
              : s.title;
        items.push({ type, id: h._id, text: String(text ?? ''), score: h._score ?? 0 });
      }
      return { items };
    },
  );
};
