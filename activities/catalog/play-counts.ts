import type { ClickHouseClient } from '@clickhouse/client';
import type { Client as OpenSearch } from '@opensearch-project/opensearch';
import { heartbeat } from '@temporalio/activity';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { ROYALTY_MIN_TICKS } from '../../api/queries/analytics';
import { ch, type ChFragment } from '../../lib/clickhouse-sql';
import { chCount, chRows } from '../../lib/clients/clickhouse';
import { indexAlias } from '../../lib/clients/opensearch';
import { idIn, readDocuments, writeDocuments } from './search-documents';

/**
 * Play counts for search ranking: royalty-bearing plays (≥ 30 s) per track from ClickHouse, into
 * PostgreSQL's denormalised `tracks.play_count`, and from there into the track, album and artist
 * documents of the tracks whose count moved. Run by a Temporal Schedule (workflows/catalog/contract.ts).
 */

/** Royalty-bearing plays per track, all time: a play's ticks are merged across the days it spans. */
export function playCountsByTrack(): ChFragment {
  return ch`
    SELECT toString(track_id) AS track_id, countIf(ticks >= ${ROYALTY_MIN_TICKS}) AS plays
    FROM (
      SELECT track_id, play_id, uniqExactMerge(ticks) AS ticks
      FROM plays
      GROUP BY track_id, play_id
    )
    GROUP BY track_id
    ORDER BY track_id`;
}

const Count = z.object({ track_id: z.string(), plays: chCount });
const Moved = z.object({ track_id: z.string(), album_id: z.string(), artist_id: z.string() });
const BATCH = 5000;

type Moved = z.infer<typeof Moved>;

/**
 * Royalty-bearing plays per track from ClickHouse into `tracks.play_count`, a batch at a time; `onMoved`
 * gets the tracks (with album and artist) whose count changed. Tracks ClickHouse has no plays of keep theirs.
 */
export async function recountPlays(
  pool: DatabasePool,
  clickhouse: ClickHouseClient,
  onMoved: (moved: readonly Moved[], done: number, of: number) => Promise<void> = async () => undefined,
): Promise<number> {
  const counts = await chRows(clickhouse, playCountsByTrack(), Count);
  let changed = 0;
  for (let i = 0; i < counts.length; i += BATCH) {
    const batch = counts.slice(i, i + BATCH);
    const moved = await pool.any(sql.type(Moved)`
      UPDATE tracks t SET play_count = x.plays
      FROM unnest(${sql.array(
        batch.map((c) => c.track_id),
        'uuid',
      )}::uuid[],
                  ${sql.array(
                    batch.map((c) => c.plays),
                    'int8',
                  )}::bigint[]) AS x(id, plays)
      WHERE t.track_id = x.id AND t.play_count <> x.plays
      RETURNING t.track_id::text, t.album_id::text, t.artist_id::text`);
    changed += moved.length;
    await onMoved(moved, i + batch.length, counts.length);
  }
  return changed;
}

export function createPlayCountActivities(deps: {
  pool: DatabasePool;
  clickhouse: ClickHouseClient;
  opensearch: OpenSearch;
  indexPrefix: string;
}) {
  return {
    async syncPlayCounts(): Promise<{ tracksChanged: number; documentsWritten: number }> {
      let documentsWritten = 0;
      const tracksChanged = await recountPlays(deps.pool, deps.clickhouse, async (moved, done, of) => {
        if (moved.length) {
          const ids = (key: keyof Moved) => [...new Set(moved.map((m) => m[key]))];
          const [tracks, albums, artists] = await Promise.all([
            readDocuments(deps.pool, 'tracks', idIn('tracks', ids('track_id')), BATCH),
            readDocuments(deps.pool, 'albums', idIn('albums', ids('album_id')), BATCH),
            readDocuments(deps.pool, 'artists', idIn('artists', ids('artist_id')), BATCH),
          ]);
          const alias = (name: 'tracks' | 'albums' | 'artists') => indexAlias(name, deps.indexPrefix);
          documentsWritten += await writeDocuments(deps.opensearch, alias('tracks'), tracks);
          documentsWritten += await writeDocuments(deps.opensearch, alias('albums'), albums);
          documentsWritten += await writeDocuments(deps.opensearch, alias('artists'), artists);
        }
        heartbeat({ done, of });
      });
      return { tracksChanged, documentsWritten };
    },
  };
}

export type PlayCountActivities = ReturnType<typeof createPlayCountActivities>;
