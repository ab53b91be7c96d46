import { Client } from '@opensearch-project/opensearch';
import type { Config } from '../config';
import { measureHealth, type Health } from './health';

/** Search indices, each versioned behind an alias (`tracks` → `tracks-v2`); see sql/opensearch. */
export const SEARCH_INDICES = ['tracks', 'artists', 'albums', 'playlists'] as const;
/** The mapping version the code writes documents for (sql/opensearch/v<N>.json). */
export const SEARCH_VERSION = 2;
export type SearchIndex = (typeof SEARCH_INDICES)[number];

export const versionedIndex = (name: SearchIndex, version: number, prefix = '') =>
  `${prefix}${name}-v${version}`;
/** The alias every reader and writer uses (config CADENZA_OPENSEARCH_INDEX_PREFIX first). */
export const indexAlias = (name: SearchIndex, prefix = '') => `${prefix}${name}`;

export function createOpenSearch(os: Config['opensearch']): Client {
  return new Client({ node: os.url, requestTimeout: 30_000 });
}

export function openSearchHealth(client: Client): Promise<Health> {
  return measureHealth('opensearch', async () => {
    const { body } = await client.cluster.health();
    if (body.status === 'red') throw new Error('cluster status red');
  });
}
