import type { Client } from '@opensearch-project/opensearch';
import type { DatabasePool } from 'slonik';
import { indexAlias, SEARCH_INDICES } from '../../lib/clients/opensearch';
import type { Counts } from '../../workflows/compliance/contract';
import { storeStatus, storeWorking } from './requests';

/**
 * Step 6 (search): the user's documents — their playlists, and any document that names them as its owner
 * or user — deleted from every Cadenza index (through the aliases, so a re-indexed version is covered).
 * Verification searches every field of every index for the user ID as a phrase, a different query.
 */

const byOwner = (userId: string) => ({
  bool: {
    should: [{ term: { owner_id: userId } }, { term: { user_id: userId } }],
    minimum_should_match: 1,
  },
});

const anyField = (userId: string) => ({
  query_string: { query: `"${userId}"`, fields: ['*'], lenient: true },
});

export function createSearchErasureActivities(deps: {
  pool: DatabasePool;
  opensearch: Client;
  indexPrefix: string;
}) {
  const { pool, opensearch } = deps;
  const aliases = SEARCH_INDICES.map((n) => indexAlias(n, deps.indexPrefix));

  /** Matching documents per index (by the alias's name); an index that is not there counts nothing. */
  async function countPerIndex(query: object): Promise<Counts> {
    const counts: Counts = {};
    for (const alias of aliases) {
      const { body } = await opensearch.count({ index: alias, ignore_unavailable: true, body: { query } });
      if (body.count) counts[alias.slice(deps.indexPrefix.length)] = body.count;
    }
    return counts;
  }

  return {
    async eraseSearch(i: { requestId: string; userId: string }): Promise<Counts> {
      await opensearch.indices.refresh({ index: aliases, ignore_unavailable: true });
      const found = await storeWorking(
        pool,
        i.requestId,
        'opensearch',
        await countPerIndex(byOwner(i.userId)),
      );
      await opensearch.deleteByQuery({
        index: aliases,
        ignore_unavailable: true,
        conflicts: 'proceed',
        refresh: true,
        body: { query: byOwner(i.userId) },
      });
      await storeStatus(pool, i.requestId, 'opensearch', 'done');
      return found;
    },

    async verifySearch(i: {
      requestId: string;
      userId: string;
    }): Promise<{ clean: boolean; residue: Counts; checked: number }> {
      await opensearch.indices.refresh({ index: aliases, ignore_unavailable: true });
      const residue = await countPerIndex(anyField(i.userId));
      const clean = Object.keys(residue).length === 0;
      await storeStatus(
        pool,
        i.requestId,
        'opensearch',
        clean ? 'verified' : 'residue',
        clean ? null : residue,
      );
      return { clean, residue, checked: aliases.length };
    },
  };
}
