import { indexAlias, type SearchIndex } from '../../lib/clients/opensearch';

/**
 * Search requests to OpenSearch, as plain request bodies (tested on their own and against a fixed corpus).
 * Relevancy is the text match multiplied by a popularity factor 1 + log10(1 + plays): popularity orders
 * comparable matches but never lifts a poor match over an exact one by much. The release date breaks ties
 * (newer first). Typos are tolerated by fuzzy matching (AUTO: one edit from 3 letters, two from 6, the first
 * letter exact).
 */

export type SearchType = 'track' | 'artist' | 'album' | 'playlist';
export const INDEX_OF: Record<SearchType, SearchIndex> = {
  track: 'tracks',
  artist: 'artists',
  album: 'albums',
  playlist: 'playlists',
};

export interface SearchFilters {
  /** Parental controls: leave explicit tracks out. */
  excludeExplicit: boolean;
  /** The listener's market: tracks licensed elsewhere only are left out. */
  country: string | null;
}

const fuzzy = (field: string, q: string, boost = 1) => ({
  match: { [field]: { query: q, operator: 'and', fuzziness: 'AUTO', prefix_length: 1, boost } },
});
const phrase = (field: string, q: string, boost: number) => ({
  match_phrase: { [field]: { query: q, boost } },
});

function popular(query: object): object {
  return {
    function_score: {
      query,
      functions: [
        { field_value_factor: { field: 'play_count', modifier: 'log1p', missing: 0 } },
        { weight: 1 },
      ],
      score_mode: 'sum',
      boost_mode: 'multiply',
    },
  };
}

function trackFilters(f: SearchFilters): object[] {
  return [
    { term: { status: 'available' } },
    ...(f.excludeExplicit ? [{ term: { explicit: false } }] : []),
    ...(f.country
      ? [
          {
            bool: {
              should: [
                { bool: { must_not: { exists: { field: 'territories' } } } },
                { term: { territories: f.country } },
              ],
              minimum_should_match: 1,
            },
          },
        ]
      : []),
  ];
}

const text = (clauses: object[]) => ({ bool: { should: clauses, minimum_should_match: 1 } });

function matchOf(type: SearchType, q: string): object {
  switch (type) {
    case 'track':
      return text([
        phrase('title', q, 4),
        fuzzy('title', q, 3),
        fuzzy('artist_name', q, 2),
        fuzzy('album_title', q),
        // "title artist" in one query: every word somewhere in the track's names.
        {
          multi_match: {
            query: q,
            type: 'cross_fields',
            fields: ['title^2', 'artist_name', 'album_title'],
            operator: 'and',
          },
        },
      ]);
    case 'artist':
      return text([phrase('name', q, 4), fuzzy('name', q, 3)]);
    case 'album':
      return text([phrase('title', q, 4), fuzzy('title', q, 3), fuzzy('artist_name', q)]);
    case 'playlist':
      return text([phrase('title', q, 4), fuzzy('title', q, 3)]);
  }
}

function filtersOf(type: SearchType, f: SearchFilters): object[] {
  switch (type) {
    case 'track':
      return trackFilters(f);
    case 'artist':
    case 'album':
      return [{ range: { track_count: { gt: 0 } } }];
    case 'playlist':
      return [{ term: { public: true } }, { range: { track_count: { gt: 0 } } }];
  }
}

const TIEBREAK: Record<SearchType, object[]> = {
  track: [{ release_date: { order: 'desc' } }, { track_id: 'asc' }],
  album: [{ release_date: { order: 'desc' } }, { album_id: 'asc' }],
  artist: [{ artist_id: 'asc' }],
  playlist: [{ playlist_id: 'asc' }],
};

export function searchRequest(
  type: SearchType,
  q: string,
  filters: SearchFilters,
  page: { size: number; from: number },
  prefix = '',
) {
  return {
    index: indexAlias(INDEX_OF[type], prefix),
    body: {
      size: page.size,
      from: page.from,
      track_total_hits: false,
      query: popular({ bool: { must: [matchOf(type, q)], filter: filtersOf(type, filters) } }),
      sort: [{ _score: { order: 'desc' } }, ...TIEBREAK[type]],
    },
  };
}

/** Prefix suggestions over tracks, artists and albums at once (the edge-n-gram sub-fields). */
export function suggestRequest(q: string, filters: SearchFilters, size: number, prefix = '') {
  return {
    index: (['tracks', 'artists', 'albums'] as const).map((i) => indexAlias(i, prefix)).join(','),
    body: {
      size,
      track_total_hits: false,
      _source: ['track_id', 'artist_id', 'album_id', 'title', 'name', 'artist_name'],
      query: popular({
        bool: {
          must: [
            {
              multi_match: {
                query: q,
                fields: ['title.autocomplete^2', 'name.autocomplete^2', 'artist_name.autocomplete'],
                operator: 'and',
              },
            },
          ],
          filter: [
            {
              bool: {
                should: [{ bool: { filter: trackFilters(filters) } }, { range: { track_count: { gt: 0 } } }],
                minimum_should_match: 1,
              },
            },
          ],
        },
      }),
    },
  };
}

/** The search type of a hit, from its (prefixed, versioned) index name. */
export function typeOfIndex(index: string, prefix = ''): SearchType | undefined {
  const name = index.slice(prefix.length).replace(/-v\d+$/, '');
  return (Object.keys(INDEX_OF) as SearchType[]).find((t) => INDEX_OF[t] === name);
}
