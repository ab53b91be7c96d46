import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@opensearch-project/opensearch';
import { SEARCH_INDICES, indexAlias, versionedIndex, type SearchIndex } from '../../lib/clients/opensearch';

/**
 * Search indices are versioned behind aliases: template `cadenza-tracks-v1` shapes index `tracks-v1`,
 * which the alias `tracks` points at. A new mapping version adds sql/opensearch/v2.json; the
 * re-index job builds `tracks-v2` and swaps the alias atomically.
 */

interface MappingFile {
  version: number;
  settings: Record<string, unknown>;
  indices: Record<SearchIndex, Record<string, unknown>>;
}

export function searchMapping(version = 1): MappingFile {
  return JSON.parse(
    readFileSync(path.join(__dirname, '..', '..', 'sql', 'opensearch', `v${version}.json`), 'utf8'),
  ) as MappingFile;
}

export async function migrateOpenSearch(client: Client, version = 1, prefix = ''): Promise<string[]> {
  const mapping = searchMapping(version);
  const created: string[] = [];
  for (const name of SEARCH_INDICES) {
    const index = versionedIndex(name, version, prefix);
    await client.indices.putIndexTemplate({
      name: `cadenza-${index}`,
      body: {
        index_patterns: [`${index}*`],
        priority: 100 + version,
        version,
        template: { settings: mapping.settings, mappings: mapping.indices[name] },
      },
    });
    const alias = indexAlias(name, prefix);
    const { body: aliasExists } = await client.indices.existsAlias({ name: alias });
    if (aliasExists) continue;
    const { body: indexExists } = await client.indices.exists({ index });
    if (!indexExists) await client.indices.create({ index });
    await client.indices.putAlias({ index, name: alias });
    created.push(`${alias} → ${index}`);
  }
  return created;
}
