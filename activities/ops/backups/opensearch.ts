import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { createInterface } from 'node:readline';
import type { Client as OpenSearchClient } from '@opensearch-project/opensearch';
import type { Client as MinioClient } from 'minio';
import { SEARCH_INDICES, indexAlias } from '../../../lib/clients/opensearch';
import type { Config } from '../../../lib/config';
import type { DrillFailure } from '../../../workflows/ops/contract';
import { progress } from './progress';
import { streamToObject, verifiedObjectStream, type StoredObject } from './objects';

/**
 * OpenSearch: the runner here has neither the repository-s3 plugin nor `path.repo`, so snapshots are not
 * available; each index behind Cadenza's aliases is exported instead, re-indexable anywhere: a first line with
 * its settings, mappings and alias, then one line per document (`_id`, `_source`), gzipped. A scroll reads one
 * point in time, so the document count and checksum taken while exporting describe exactly the file.
 */

export interface OpenSearchIndexBackup {
  alias: string;
  index: string;
  object: StoredObject;
  docs: number;
  checksum: string;
}
export interface OpenSearchBackup {
  indices: OpenSearchIndexBackup[];
}

interface Header {
  alias: string;
  index: string;
  settings: Record<string, unknown>;
  mappings: Record<string, unknown>;
}

const PAGE = 1000;
const MASK = (1n << 64n) - 1n;
/** Order-free: the sum (mod 2^64) of a 64-bit hash of each document's ID and source text. */
const docHash = (id: string, source: string) =>
  createHash('sha256').update(id).update('\n').update(source).digest().readBigUInt64BE(0);

/** Index settings a new index can be created with (not its identity: uuid, creation date, version …). */
function creatableSettings(index: Record<string, unknown>): Record<string, unknown> {
  const drop = new Set(['uuid', 'creation_date', 'version', 'provided_name', 'routing', 'resize', 'blocks']);
  return Object.fromEntries(Object.entries(index).filter(([k]) => !drop.has(k)));
}

async function* scroll(
  os: OpenSearchClient,
  index: string,
): AsyncGenerator<{ _id: string; _source: unknown }> {
  let res = await os.search({ index, scroll: '2m', size: PAGE, body: { sort: ['_doc'] } });
  const ids: string[] = [];
  try {
    for (;;) {
      const body = res.body as { _scroll_id?: string; hits: { hits: { _id: string; _source: unknown }[] } };
      if (body._scroll_id) ids.push(body._scroll_id);
      if (!body.hits.hits.length) return;
      for (const hit of body.hits.hits) yield hit;
      res = await os.scroll({ scroll_id: body._scroll_id as string, scroll: '2m' });
    }
  } finally {
    if (ids.length) await os.clearScroll({ body: { scroll_id: [...new Set(ids)] } }).catch(() => undefined);
  }
}

export async function backupOpenSearch(
  deps: { opensearch: OpenSearchClient; minio: MinioClient; config: Config },
  bucket: string,
  backupId: string,
): Promise<OpenSearchBackup> {
  const os = deps.opensearch;
  const indices: OpenSearchIndexBackup[] = [];
  for (const name of SEARCH_INDICES) {
    const alias = indexAlias(name, deps.config.opensearch.indexPrefix);
    const { body: exists } = await os.indices.existsAlias({ name: alias });
    if (!exists) continue;
    const { body: info } = await os.indices.get({ index: alias });
    for (const [index, meta] of Object.entries(info as Record<string, Record<string, unknown>>)) {
      const settings = creatableSettings(
        ((meta.settings as { index?: Record<string, unknown> }).index ?? {}) as Record<string, unknown>,
      );
      const header: Header = { alias, index, settings, mappings: meta.mappings as Record<string, unknown> };
      let docs = 0;
      let sum = 0n;
      async function* lines(): AsyncGenerator<string> {
        yield `${JSON.stringify(header)}\n`;
        for await (const hit of scroll(os, index)) {
          const source = JSON.stringify(hit._source);
          sum = (sum + docHash(hit._id, source)) & MASK;
          docs++;
          if (docs % PAGE === 0) progress({ store: 'opensearch', index, docs });
          yield `{"_id":${JSON.stringify(hit._id)},"_source":${source}}\n`;
        }
      }
      const object = await streamToObject(
        deps.minio,
        bucket,
        `${backupId}/opensearch/${index}.ndjson.gz`,
        Readable.from(lines()).pipe(createGzip()),
      );
      indices.push({ alias, index, object, docs, checksum: sum.toString() });
    }
  }
  return { indices };
}

/**
 * Re-indexes each export into `<prefix><index>` (replaced if there), then counts and sums it the way the
 * backup did. The drill deletes them afterwards; an operator's restore (`keep`) leaves them to alias.
 */
export async function restoreOpenSearch(
  deps: { opensearch: OpenSearchClient; minio: MinioClient; config: Config },
  bucket: string,
  backup: OpenSearchBackup,
  opts: { prefix: string; keep?: boolean },
): Promise<{ checks: number; failures: DrillFailure[] }> {
  const os = deps.opensearch;
  const failures: DrillFailure[] = [];
  const fail = (object: string, reason: string) => failures.push({ store: 'opensearch', object, reason });
  let checks = 0;
  for (const b of backup.indices) {
    checks++;
    const target = `${opts.prefix}${b.index}`.slice(0, 255);
    if (opts.keep) {
      const { body: there } = await os.indices.exists({ index: target });
      if (there) throw new Error(`index ${target} exists already: delete it first`);
    } else await os.indices.delete({ index: target }).catch(() => undefined);
    try {
      const read = await verifiedObjectStream(deps.minio, bucket, b.object);
      const gunzip = read.stream.pipe(createGunzip());
      read.stream.on('error', (err) => gunzip.destroy(err));
      let header: Header | undefined;
      let batch: Record<string, unknown>[] = [];
      const flush = async () => {
        if (!batch.length) return;
        const { body } = await os.bulk({ body: batch });
        if ((body as { errors?: boolean }).errors) throw new Error('bulk indexing reported errors');
        batch = [];
        progress({ store: 'opensearch', index: target });
      };
      try {
        for await (const line of createInterface({ input: gunzip, crlfDelay: Infinity })) {
          if (!line) continue;
          if (!header) {
            header = JSON.parse(line) as Header;
            await os.indices.create({
              index: target,
              body: { settings: { index: header.settings }, mappings: header.mappings },
            });
            continue;
          }
          const doc = JSON.parse(line) as { _id: string; _source: Record<string, unknown> };
          batch.push({ index: { _index: target, _id: doc._id } }, doc._source);
          if (batch.length >= 2 * PAGE) await flush();
        }
        await flush();
      } catch (err) {
        fail(b.index, `re-indexing failed: ${(err as Error).message.slice(0, 300)}`);
        continue;
      }
      const damaged = read.verdict();
      if (damaged) fail(b.index, `the object is damaged: ${damaged}`);
      if (!header) {
        fail(b.index, 'the export holds no index description');
        continue;
      }
      checks++;
      await os.indices.refresh({ index: target });
      let docs = 0;
      let sum = 0n;
      for await (const hit of scroll(os, target)) {
        docs++;
        sum = (sum + docHash(hit._id, JSON.stringify(hit._source))) & MASK;
      }
      if (docs !== b.docs) fail(b.index, `${docs} documents restored, the source had ${b.docs}`);
      else if (sum.toString() !== b.checksum)
        fail(b.index, 'same document count, different contents (checksum)');
    } finally {
      if (!opts.keep) await os.indices.delete({ index: target }).catch(() => undefined);
    }
  }
  return { checks, failures };
}
