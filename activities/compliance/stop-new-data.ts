import { heartbeat, sleep } from '@temporalio/activity';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { HOLDER_SILENT_AFTER_S, type ErasureList } from '../../lib/erasure-lists';
import { storeStatus, storeWorking } from './requests';

/**
 * Step 2 of an erasure: no new data about the person. Their token subject joins `denied_subjects` (every
 * API refuses it, whatever token it remembers, and refuses play-ticks for them); their user ID joins
 * `play_suppressions` (every sink drops their ticks, including those already in Kafka); the account is
 * closed (`erased_at`), so no new subscription or dimension copy starts. Then the step waits until every
 * running API and sink reports holding those entries (list_holders), never a fixed sleep.
 */

const Version = z.object({ version: z.number() });
const Holders = z.object({ live: z.number(), behind: z.number() });

export interface ListVersions {
  deniedVersion: number;
  suppressionVersion: number;
}

export function createStopNewDataActivities(pool: DatabasePool) {
  return {
    async stopNewData(i: { requestId: string; userId: string }): Promise<ListVersions> {
      await storeWorking(pool, i.requestId, 'auth', { denied: 1, suppressed: 1 });
      const versions = await pool.transaction(async (tx) => {
        // Writers commit in version order, so a follower that read version N holds every entry up to N.
        await tx.query(sql.unsafe`LOCK TABLE denied_subjects, play_suppressions IN SHARE ROW EXCLUSIVE MODE`);
        await tx.query(sql.unsafe`
          INSERT INTO denied_subjects (subject, reason, request_id) VALUES (${i.userId}, 'gdpr_erasure', ${i.requestId})
          ON CONFLICT (subject) DO NOTHING`);
        await tx.query(sql.unsafe`
          INSERT INTO play_suppressions (user_id, reason, request_id) VALUES (${i.userId}, 'gdpr_erasure', ${i.requestId})
          ON CONFLICT (user_id) DO NOTHING`);
        await tx.query(sql.unsafe`
          UPDATE users SET erased_at = coalesce(erased_at, now()) WHERE user_id = ${i.userId}`);
        return {
          deniedVersion: await tx.oneFirst(
            sql.type(Version)`SELECT version FROM denied_subjects WHERE subject = ${i.userId}`,
          ),
          suppressionVersion: await tx.oneFirst(
            sql.type(Version)`SELECT version FROM play_suppressions WHERE user_id = ${i.userId}`,
          ),
        };
      });
      return versions;
    },

    /** An independent look: both entries are there, and no running holder is behind them. */
    async verifyNewDataStopped(i: {
      requestId: string;
      userId: string;
      versions: ListVersions;
    }): Promise<{ clean: boolean; residue: Record<string, number> }> {
      const row = await pool.one(sql.type(
        z.object({ denied: z.number(), suppressed: z.number(), behind: z.number() }),
      )`
        SELECT (SELECT count(*) FROM denied_subjects WHERE subject = ${i.userId})::int AS denied,
               (SELECT count(*) FROM play_suppressions WHERE user_id = ${i.userId})::int AS suppressed,
               (SELECT count(*) FROM list_holders
                WHERE reported_at > now() - make_interval(secs => ${HOLDER_SILENT_AFTER_S})
                  AND ((list = 'denied_subjects' AND version < ${i.versions.deniedVersion})
                    OR (list = 'play_suppressions' AND version < ${i.versions.suppressionVersion})))::int AS behind`);
      const residue: Record<string, number> = {};
      if (row.denied !== 1) residue.not_denied = 1;
      if (row.suppressed !== 1) residue.not_suppressed = 1;
      if (row.behind) residue.holders_behind = row.behind;
      const clean = Object.keys(residue).length === 0;
      await storeStatus(pool, i.requestId, 'auth', clean ? 'verified' : 'residue', clean ? null : residue);
      return { clean, residue };
    },

    /**
     * Waits until every running holder of the list (APIs for denied subjects, sinks for suppressions)
     * reports a version at least `version`. A holder that stopped reporting is not running; one that
     * starts later loads the whole list before it serves. Heartbeats while it waits.
     */
    async awaitListHeld(i: {
      requestId: string;
      list: ErasureList;
      version: number;
    }): Promise<{ holders: number }> {
      for (;;) {
        const h = await pool.one(sql.type(Holders)`
          SELECT count(*)::int AS live, (count(*) FILTER (WHERE version < ${i.version}))::int AS behind
          FROM list_holders
          WHERE list = ${i.list} AND reported_at > now() - make_interval(secs => ${HOLDER_SILENT_AFTER_S})`);
        if (h.behind === 0) return { holders: h.live };
        heartbeat({ list: i.list, version: i.version, behind: h.behind });
        await sleep(100);
      }
    },
  };
}
