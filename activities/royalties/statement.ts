import { createHash } from 'node:crypto';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import type { Client as Minio } from 'minio';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { sql, type DatabasePool } from 'slonik';
import { pack as tarPack, type Pack } from 'tar-stream';
import { z } from 'zod';
import {
  artistFile,
  artistFooter,
  CSV_HEADER,
  summaryJson,
  SUMMARY_FILE,
  type ArtistTotal,
  type CarriedAdjustment,
  type CurrencyTotal,
  type HeldException,
} from '../../domain/royalties/statement';
import { monthDate } from '../../domain/royalties/pins';
import { Progress } from './heartbeat';
import { loadPolicy, loadRun, pinsOf } from './runs';

/**
 * The statement: one tar archive — summary.json, then artists/<artist>.csv in artist order — streamed from
 * PostgreSQL (COPY of the payout lines, in order) through a SHA-256 into the write-once `royalties`
 * bucket. Tar headers carry no clock (mtime 0, no owner), so the archive's bytes are the statement's.
 */

export interface StatementDeps {
  pool: DatabasePool;
  copyPool: pg.Pool;
  minio: Minio;
  /** bucketName('royalties', prefix). */
  bucket: string;
}

export const statementKey = (month: string, runId: string) => `settlements/${month}/${runId}/statement.tar`;

const EPOCH = new Date(0);

function addEntry(pack: Pack, name: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(
      {
        name,
        size: body.length,
        mtime: EPOCH,
        mode: 0o644,
        uid: 0,
        gid: 0,
        uname: '',
        gname: '',
        type: 'file',
      },
      body,
      (err) => (err ? reject(err) : resolve()),
    );
  });
}

class Sha256 extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

/** COPY text rows (artist\ttrack\tcountry\t…) as [artist, csv line], one line at a time. */
async function* linesByArtist(rows: AsyncIterable<Buffer>): AsyncGenerator<[string, string]> {
  let rest = '';
  for await (const chunk of rows) {
    const text = rest + chunk.toString('latin1');
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const line = text.slice(start, nl);
      // artist (36) TAB track TAB country TAB plays TAB rate TAB currency TAB exact TAB amount
      yield [line.slice(0, 36), `play,${line.slice(37).replaceAll('\t', ',')}\n`];
      start = nl + 1;
    }
    rest = text.slice(start);
  }
  if (rest) throw new Error('statement lines ended in the middle of a row');
}

const ArtistRow = z.object({
  artist_id: z.string(),
  currency: z.string(),
  lines: z.number(),
  plays: z.number(),
  exact: z.string(),
  amount: z.string(),
  adjustment: z.string(),
  payable: z.string(),
});

export function createStatementActivities(deps: StatementDeps) {
  const { pool, copyPool, minio, bucket } = deps;

  async function writeStatement(runId: string): Promise<{ key: string; sha256: string; bytes: number }> {
    const run = await loadRun(pool, runId);
    const key = statementKey(run.month, runId);
    if (run.statement_sha256) {
      const bytes = await pool.oneFirst(sql.type(z.object({ b: z.number() }))`
        SELECT statement_bytes AS b FROM settlement_runs WHERE run_id = ${runId}`);
      return { key, sha256: run.statement_sha256, bytes };
    }
    const progress = new Progress('statement');
    try {
      return await write(runId, run, key, progress);
    } finally {
      progress.stop();
    }
  }

  async function write(
    runId: string,
    run: Awaited<ReturnType<typeof loadRun>>,
    key: string,
    progress: Progress,
  ): Promise<{ key: string; sha256: string; bytes: number }> {
    const pins = pinsOf(run);
    const policy = await loadPolicy(pool, pins.policyVersion);
    const currencies = await pool.any(sql.type(
      z.object({
        currency: z.string(),
        artists: z.number(),
        lines: z.number(),
        plays: z.number(),
        amount: z.string(),
        adjustment: z.string(),
        payable: z.string(),
      }),
    )`
      SELECT currency::text AS currency, count(*)::int AS artists, sum(lines)::int AS lines, sum(plays)::bigint AS plays,
             sum(amount)::text AS amount, sum(adjustment)::text AS adjustment, sum(amount + adjustment)::text AS payable
      FROM artist_payouts WHERE run_id = ${runId} GROUP BY currency`);
    const excluded = await pool.one(sql.type(z.object({ bot: z.number(), below: z.number() }))`
      SELECT coalesce(sum(bot_plays), 0)::bigint AS bot, coalesce(sum(below_threshold_plays), 0)::bigint AS below
      FROM settlement_snapshot_lines WHERE run_id = ${run.snapshot_run_id}`);
    const held = await pool.any(
      sql.type(
        z.object({ kind: z.string(), subject: z.string(), plays: z.number(), detail: z.string() }),
      )`SELECT kind, subject, plays, detail FROM settlement_exceptions WHERE run_id = ${runId} AND holds`,
    );
    const artists = await pool.any(sql.type(ArtistRow)`
      SELECT artist_id::text AS artist_id, currency::text AS currency, lines, plays, exact_amount::text AS exact,
             amount::text AS amount, adjustment::text AS adjustment, (amount + adjustment)::text AS payable
      FROM artist_payouts WHERE run_id = ${runId} ORDER BY artist_id, currency`);
    const adjustments = await pool.any(sql.type(
      z.object({ artist_id: z.string(), currency: z.string(), origin_month: z.string(), amount: z.string() }),
    )`
      SELECT artist_id::text AS artist_id, currency::text AS currency, to_char(origin_month, 'YYYY-MM') AS origin_month,
             amount::text AS amount
      FROM settlement_adjustments
      WHERE target_month = ${monthDate(run.month)}::date AND created_at <= ${pins.adjustmentsThrough}::timestamptz
      ORDER BY artist_id, currency, origin_month, amount, source_run_id`);

    const totals: ArtistTotal[] = artists.map((a) => ({
      artistId: a.artist_id,
      currency: a.currency,
      lines: a.lines,
      plays: a.plays,
      exact: a.exact,
      amount: a.amount,
      adjustment: a.adjustment,
      payable: a.payable,
    }));
    const summary = summaryJson({
      pins,
      policy,
      currencies: currencies as CurrencyTotal[],
      excluded: { botPlays: excluded.bot, belowThresholdPlays: excluded.below },
      held: held as HeldException[],
      artists: totals,
    });

    const pack = tarPack();
    const hasher = new Sha256();
    const body = new PassThrough();
    Readable.from(pack).pipe(hasher).pipe(body);
    const upload = minio
      .putObject(bucket, key, body, undefined, { 'Content-Type': 'application/x-tar' })
      .catch((err: unknown) => {
        pack.destroy(err as Error);
        throw err;
      });

    const produce = async () => {
      await addEntry(pack, SUMMARY_FILE, Buffer.from(summary, 'utf8'));
      const client = await copyPool.connect();
      try {
        const rows = client.query(
          copyTo(`COPY (SELECT artist_id, track_id, country, plays, rate_per_play, currency, exact_amount, amount
                        FROM payout_lines WHERE run_id = '${runIdLiteral(runId)}'
                        ORDER BY artist_id, track_id, country) TO STDOUT`),
        );
        const lines = linesByArtist(rows)[Symbol.asyncIterator]();
        let pending = await lines.next();
        const byArtist = groupBy(totals, (t) => t.artistId);
        const carried = groupBy(
          adjustments.map((a): CarriedAdjustment => ({
            artistId: a.artist_id,
            currency: a.currency,
            originMonth: a.origin_month,
            amount: a.amount,
          })),
          (a) => a.artistId,
        );
        let written = 0;
        for (const [artistId, artistTotals] of byArtist) {
          let csv = CSV_HEADER;
          while (!pending.done && pending.value[0] === artistId) {
            csv += pending.value[1];
            pending = await lines.next();
          }
          csv += artistFooter(artistTotals, carried.get(artistId) ?? []);
          await addEntry(pack, artistFile(artistId), Buffer.from(csv, 'latin1'));
          progress.update({ artists: ++written });
        }
        if (!pending.done)
          throw new Error(`payout line of artist ${pending.value[0]} without an artist payout`);
      } finally {
        client.release();
      }
      pack.finalize();
    };
    await Promise.all([
      produce().catch((err: unknown) => {
        pack.destroy(err as Error);
        throw err;
      }),
      upload,
    ]);
    const sha256 = hasher.hash.digest('hex');
    const updated = await pool.query(sql.unsafe`
      UPDATE settlement_runs SET statement_key = ${key}, statement_sha256 = ${sha256}, statement_bytes = ${hasher.bytes},
             updated_at = now()
      WHERE run_id = ${runId} AND status = 'running' AND statement_sha256 IS NULL`);
    if (updated.rowCount !== 1)
      throw new Error(`run ${runId} stopped computing while its statement was written`);
    return { key, sha256, bytes: hasher.bytes };
  }

  return { writeStatement };
}

/** COPY (…) TO takes no bound parameters; the run ID is a UUID, checked before it goes into the text. */
function runIdLiteral(runId: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(runId))
    throw new Error(`not a run ID: ${runId}`);
  return runId;
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}
