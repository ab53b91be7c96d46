import { createHash } from 'node:crypto';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { AGGREGATION_SETTINGS, settlementAggregation } from './aggregate';
import { Progress } from './heartbeat';
import { loadPolicy, loadRun, pinsOf } from './runs';

/**
 * Freezing a month's plays: ClickHouse aggregates under the run's pins and its rows stream, as they come,
 * into PostgreSQL's COPY (no parsing in between), hashed on the way. The snapshot holds track, artist,
 * country and counts — never a user ID — so an erasure never reaches it, and a verification re-run
 * computes from it even after the plays are gone from ClickHouse.
 */

export interface SnapshotDeps {
  pool: DatabasePool;
  copyPool: pg.Pool;
  clickhouse: ClickHouseClient;
}

/** Counts lines and hashes bytes as they pass, and tells the heartbeat how far it got. */
class Tally extends Transform {
  readonly hash = createHash('sha256');
  lines = 0;
  constructor(private readonly progress: Progress) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.lines++;
    this.progress.update({ lines: this.lines });
    done(null, chunk);
  }
}

export function createSnapshotActivities(deps: SnapshotDeps) {
  const { pool, copyPool, clickhouse } = deps;

  /** The catalog's track → artist, copied into ClickHouse's dimension (newest version wins) right before. */
  async function refreshTrackArtists(): Promise<void> {
    const client = await copyPool.connect();
    try {
      const version = Date.now();
      const rows = client.query(
        copyTo(
          `COPY (SELECT track_id, artist_id, album_id, duration_ms, release_date, status, ${version}::bigint FROM tracks) TO STDOUT`,
        ),
      );
      await clickhouse.insert({
        table: 'dim_tracks',
        values: rows,
        format: 'TabSeparated',
        // Every column, status too: a newer version without it would put taken-down tracks back to available.
        columns: ['track_id', 'artist_id', 'album_id', 'duration_ms', 'release_date', 'status', 'version'],
      });
    } finally {
      client.release();
    }
  }

  async function aggregationOf(runId: string) {
    const run = await loadRun(pool, runId);
    const policy = await loadPolicy(pool, run.policy_version as number);
    return { run, query: settlementAggregation(pinsOf(run), policy) };
  }

  /**
   * ClickHouse → PostgreSQL in one transaction: the run's snapshot lines and their digest, or nothing.
   * A run whose snapshot is there already (a retry after the commit) answers with it.
   */
  async function snapshotPlays(runId: string): Promise<{ lines: number; sha256: string }> {
    const { run, query } = await aggregationOf(runId);
    if (run.snapshot_sha256) {
      const lines = await pool.oneFirst(sql.type(z.object({ n: z.number() }))`
        SELECT count(*)::int AS n FROM settlement_snapshot_lines WHERE run_id = ${runId}`);
      return { lines, sha256: run.snapshot_sha256 };
    }
    const progress = new Progress('snapshot');
    const signal = progress.signal;
    await refreshTrackArtists();
    const client = await copyPool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('cadenza.snapshot_run', $1, true)`, [runId]);
      const tally = new Tally(progress);
      const { stream } = await clickhouse.exec({
        query: `${query.text}\nFORMAT TabSeparated`,
        abort_signal: signal,
        clickhouse_settings: AGGREGATION_SETTINGS,
      });
      await pipeline(
        stream,
        tally,
        client.query(
          copyFrom(
            'COPY settlement_snapshot_lines (track_id, artist_id, country, plays, bot_plays, below_threshold_plays) FROM STDIN',
          ),
        ),
        ...(signal ? [{ signal }] : []),
      );
      const sha256 = tally.hash.digest('hex');
      const updated = await client.query(
        `UPDATE settlement_runs r
         SET snapshot_sha256 = $2, snapshot_lines = s.lines, updated_at = now(),
             snapshot_stats = jsonb_build_object('lines', s.lines, 'plays', s.plays, 'botPlays', s.bot,
                                                 'belowThresholdPlays', s.below, 'unknownTrackLines', s.unknown)
         FROM (SELECT count(*) AS lines, coalesce(sum(plays), 0) AS plays, coalesce(sum(bot_plays), 0) AS bot,
                      coalesce(sum(below_threshold_plays), 0) AS below, count(*) FILTER (WHERE artist_id IS NULL) AS unknown
               FROM settlement_snapshot_lines WHERE run_id = $1) s
         WHERE r.run_id = $1 AND r.status = 'running'`,
        [runId, sha256],
      );
      if (updated.rowCount !== 1) throw new Error(`run ${runId} stopped computing during its snapshot`);
      await client.query('COMMIT');
      return { lines: tally.lines, sha256 };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      progress.stop();
      client.release();
    }
  }

  /**
   * A verification re-run: ClickHouse aggregates again under the same pins and the result is compared
   * with the frozen snapshot. Equal digests say the same; otherwise the lines are compared to say how far
   * apart (after an erasure, say, the statement still reproduces from the snapshot, and this says why the
   * plays in ClickHouse no longer match).
   */
  async function compareWithClickHouse(runId: string): Promise<{ matches: boolean }> {
    const { run, query } = await aggregationOf(runId);
    const snapshot = await loadRun(pool, run.snapshot_run_id as string);
    const progress = new Progress('reaggregation');
    const signal = progress.signal;
    const tally = new Tally(progress);
    let detail: Record<string, unknown> = {};
    let clickhouseSha256: string;
    try {
      await refreshTrackArtists();
      const { stream } = await clickhouse.exec({
        query: `${query.text}\nFORMAT TabSeparated`,
        abort_signal: signal,
        clickhouse_settings: AGGREGATION_SETTINGS,
      });
      await pipeline(stream, tally, new Writable({ write: (_chunk, _enc, done) => done() }));
      clickhouseSha256 = tally.hash.digest('hex');
      if (clickhouseSha256 !== snapshot.snapshot_sha256)
        detail = await differences(query.text, run.snapshot_run_id as string, signal);
    } finally {
      progress.stop();
    }
    const matches = clickhouseSha256 === snapshot.snapshot_sha256;
    const reaggregation = {
      matches,
      snapshotRunId: run.snapshot_run_id,
      snapshotSha256: snapshot.snapshot_sha256,
      clickhouseSha256,
      clickhouseLines: tally.lines,
      ...detail,
    };
    await pool.query(sql.unsafe`
      UPDATE settlement_runs SET reaggregation = ${sql.jsonb(reaggregation as never)}, updated_at = now()
      WHERE run_id = ${runId} AND status = 'running'`);
    return { matches };
  }

  /** How ClickHouse's answer now differs from a snapshot, line by line (track, country). */
  async function differences(queryText: string, snapshotRunId: string, signal?: AbortSignal) {
    const client = await copyPool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `CREATE TEMP TABLE reaggregated (track_id uuid, artist_id uuid, country char(2), plays bigint,
           bot_plays bigint, below_threshold_plays bigint) ON COMMIT DROP`,
      );
      const { stream } = await clickhouse.exec({
        query: `${queryText}\nFORMAT TabSeparated`,
        abort_signal: signal,
        clickhouse_settings: AGGREGATION_SETTINGS,
      });
      await pipeline(stream, client.query(copyFrom('COPY reaggregated FROM STDIN')));
      const { rows } = await client.query<{
        lines_differing: string;
        plays_now: string;
        plays_frozen: string;
      }>(
        `SELECT count(*) FILTER (WHERE n.plays IS DISTINCT FROM s.plays OR n.artist_id IS DISTINCT FROM s.artist_id
                                  OR n.bot_plays IS DISTINCT FROM s.bot_plays
                                  OR n.below_threshold_plays IS DISTINCT FROM s.below_threshold_plays) AS lines_differing,
                coalesce(sum(n.plays), 0) AS plays_now, coalesce(sum(s.plays), 0) AS plays_frozen
         FROM reaggregated n
         FULL JOIN (SELECT * FROM settlement_snapshot_lines WHERE run_id = $1) s
           ON s.track_id = n.track_id AND s.country = n.country`,
        [snapshotRunId],
      );
      await client.query('COMMIT');
      const r = rows[0] as { lines_differing: string; plays_now: string; plays_frozen: string };
      return {
        linesDiffering: Number(r.lines_differing),
        playsNow: Number(r.plays_now),
        playsFrozen: Number(r.plays_frozen),
      };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  return { snapshotPlays, compareWithClickHouse };
}
