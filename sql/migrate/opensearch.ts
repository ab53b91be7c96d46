import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@opensearch-project/opensearch';
import {
  SEARCH_INDICES,
  SEARCH_VERSION,
  indexAlias,
  versionedIndex,
  type SearchIndex,
} from '../../lib/clients/opensearch';

/**
 * Search indices are versioned behind aliases: template `cadenza-tracks-v2` shapes index `tracks-v2`,
 * which the alias `tracks` points at. A new mapping version adds sql/opensearch/v<N>.json; the re-index
 * (the `reindexSearch` workflow, or `npm run migrate` on an existing system) builds `tracks-v<N>` from
 * PostgreSQL beside the old index and swaps the alias atomically.
 */

interface MappingFile {
  version: number;
  settings: Record<string, unknown>;
  indices: Record<SearchIndex, Record<string, unknown>>;
}

export function searchMapping(version = SEARCH_VERSION): MappingFile {
  return JSON.parse(
    readFileSync(path.join(__dirname, '..', '..', 'sql', 'opensearch', `v${version}.json`), 'utf8'),
  ) as MappingFile;
}

/** Puts the index template of one mapping version for every index (idempotent). */
export async function putSearchTemplates(
  client: Client,
  version = SEARCH_VERSION,
  prefix = '',
): Promise<void> {
  const mapping = searchMapping(version);
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
  }
}

/** The index an alias points at, or null when the alias does not exist. */
export async function aliasTarget(client: Client, alias: string): Promise<string | null> {
  const { body: exists } = await client.indices.existsAlias({ name: alias });
  if (!exists) return null;
  const { body } = await client.indices.getAlias({ name: alias });
  return Object.keys(body)[0] ?? null;
}

/**
 * Points an alias from one index to another in one atomic request: every search sees either the old
 * index or the new one, never neither.
 */
export async function swapAlias(
  client: Client,
  alias: string,
  from: string | null,
  to: string,
): Promise<void> {
  // What was written to the new index is searchable before searches reach it (not a refresh interval later).
  await client.indices.refresh({ index: to });
  await client.indices.updateAliases({
    body: {
      actions: [...(from ? [{ remove: { index: from, alias } }] : []), { add: { index: to, alias } }],
    },
  });
}

/** Aliases that point at an index of another mapping version: the re-index must move them. */
export async function searchIndicesBehind(
  client: Client,
  version = SEARCH_VERSION,
  prefix = '',
): Promise<{ name: SearchIndex; alias: string; from: string }[]> {
  const behind = [];
  for (const name of SEARCH_INDICES) {
    const alias = indexAlias(name, prefix);
    const from = await aliasTarget(client, alias);
    if (from && from !== versionedIndex(name, version, prefix)) behind.push({ name, alias, from });
  }
  return behind;
}

/**
 * Puts the index templates, and creates each versioned index with its alias where the alias is missing.
 * An alias on an older version is left for the re-index (it needs the catalog's rows).
 */
export async function migrateOpenSearch(
  client: Client,
  version = SEARCH_VERSION,
  prefix = '',
): Promise<string[]> {
  await putSearchTemplates(client, version, prefix);
  const created: string[] = [];
  for (const name of SEARCH_INDICES) {
    const index = versionedIndex(name, version, prefix);
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
