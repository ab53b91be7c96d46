import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { recordAudit } from '../../lib/audit';
import type {
  Counts,
  ErasureStore,
  RequestOutcome,
  RequestStatus,
} from '../../workflows/compliance/contract';

/**
 * The request's record in PostgreSQL (`gdpr_requests`, `gdpr_request_stores`): the projection the API
 * reads, kept current by the workflow's steps. Every write is idempotent (natural keys, guarded status
 * moves) and every compliance step leaves one audit entry, keyed so a retried step does not add another.
 */

export type RequestKind = 'erasure' | 'export';

export interface NewRequest {
  requestId: string;
  userId: string;
  kind: RequestKind;
  requester: string;
  reason: string | null;
  workflowId: string;
  /** The workflow's start time, so a retry records the same instant. */
  receivedAt: number;
  dueAt: number;
}

export interface RecordedRequest {
  /** The user exists (erased or not). */
  known: boolean;
  /** The user's data was erased already (exports then answer that nothing is left). */
  erased: boolean;
  /** The open request of the same kind this one joined; its run does the work. */
  joined: string | null;
  receivedAt: number;
  dueAt: number;
  extendedDueAt: number | null;
}

const RequestRow = z.object({
  status: z.string(),
  joined_request_id: z.string().nullable(),
  received_ms: z.number(),
  due_ms: z.number(),
  extended_due_ms: z.number().nullable(),
});
const UserRow = z.object({ erased: z.boolean() });
const OpenRow = z.object({ request_id: z.string() });
const FoundRow = z.object({ found: z.record(z.number()).nullable() });

const ms = (column: string) => sql.fragment`(extract(epoch FROM ${sql.identifier([column])}) * 1000)::float8`;
const at = (epochMs: number) => new Date(epochMs).toISOString();

const terminal = ['completed', 'failed', 'joined'];

export const auditActor = (workflowId: string) => `workflow:${workflowId}`;

export function createRequestActivities(pool: DatabasePool) {
  async function readRequest(db: CommonQueryMethods, requestId: string) {
    return db.maybeOne(sql.type(RequestRow)`
      SELECT status, joined_request_id::text AS joined_request_id, ${ms('received_at')} AS received_ms,
             ${ms('due_at')} AS due_ms,
             CASE WHEN extended_due_at IS NULL THEN NULL ELSE ${ms('extended_due_at')} END AS extended_due_ms
      FROM gdpr_requests WHERE request_id = ${requestId}`);
  }

  return {
    /**
     * Records the request (step 1), or finds it recorded by an earlier attempt. A user unknown to
     * PostgreSQL is recorded as failed with that outcome; a second request while one of the same kind is
     * open for the user joins the open one.
     */
    async recordRequest(r: NewRequest): Promise<RecordedRequest> {
      const user = await pool.maybeOne(
        sql.type(UserRow)`SELECT erased_at IS NOT NULL AS erased FROM users WHERE user_id = ${r.userId}`,
      );
      const known = user !== null;
      const row = await pool.transaction(async (tx) => {
        const seen = await readRequest(tx, r.requestId);
        if (seen) return seen;
        const values = sql.fragment`${r.requestId}, ${r.userId}, ${r.kind}, ${r.requester}, ${r.reason},
          ${r.workflowId}, ${at(r.receivedAt)}, ${at(r.dueAt)}`;
        if (!known) {
          await tx.query(sql.unsafe`
            INSERT INTO gdpr_requests (request_id, user_id, kind, requester, reason, workflow_id, received_at,
              due_at, status, outcome, failure_reason, completed_at)
            VALUES (${values}, 'failed', 'unknown_user', 'No such user.', now())`);
        } else {
          const inserted = await tx.maybeOne(sql.type(OpenRow)`
            INSERT INTO gdpr_requests (request_id, user_id, kind, requester, reason, workflow_id, received_at,
              due_at, status)
            VALUES (${values}, 'received')
            ON CONFLICT (user_id, kind) WHERE status IN ('received', 'in_progress', 'verifying', 'escalated')
            DO NOTHING
            RETURNING request_id::text AS request_id`);
          if (!inserted) {
            const open = await tx.one(sql.type(OpenRow)`
              SELECT request_id::text AS request_id FROM gdpr_requests
              WHERE user_id = ${r.userId} AND kind = ${r.kind}
                AND status IN ('received', 'in_progress', 'verifying', 'escalated')`);
            await tx.query(sql.unsafe`
              INSERT INTO gdpr_requests (request_id, user_id, kind, requester, reason, workflow_id, received_at,
                due_at, status, joined_request_id)
              VALUES (${values}, 'joined', ${open.request_id})`);
          }
        }
        return tx.one(sql.type(RequestRow)`
          SELECT status, joined_request_id::text AS joined_request_id, ${ms('received_at')} AS received_ms,
                 ${ms('due_at')} AS due_ms, NULL::float8 AS extended_due_ms
          FROM gdpr_requests WHERE request_id = ${r.requestId}`);
      });
      await recordAudit(pool, {
        actor: auditActor(r.workflowId),
        action: `gdpr.${r.kind}.received`,
        subjectType: 'gdpr_request',
        subjectId: r.requestId,
        entryKey: `gdpr:${r.requestId}:received`,
        details: {
          requester: r.requester,
          reason: r.reason,
          dueAt: at(row.due_ms),
          ...(row.joined_request_id ? { joined: row.joined_request_id } : {}),
          ...(known ? {} : { outcome: 'unknown_user' }),
        },
      });
      return {
        known,
        erased: user?.erased ?? false,
        joined: row.joined_request_id,
        receivedAt: row.received_ms,
        dueAt: row.due_ms,
        extendedDueAt: row.extended_due_ms,
      };
    },

    /**
     * Moves the request's status forward. An escalated request stays `escalated` until it ends; an ended
     * one (completed, failed, joined) never changes again.
     */
    async setRequestStatus(i: { requestId: string; status: RequestStatus }): Promise<void> {
      await pool.query(sql.unsafe`
        UPDATE gdpr_requests
        SET status = CASE WHEN status = 'escalated' AND ${i.status} IN ('in_progress', 'verifying')
                          THEN 'escalated' ELSE ${i.status} END,
            updated_at = now()
        WHERE request_id = ${i.requestId} AND NOT (status = ANY(${sql.array(terminal, 'text')}))`);
    },

    /** Day 25 and not done: flagged for a person (status, time, audit entry). */
    async escalateRequest(i: { requestId: string; workflowId: string; kind: RequestKind; dueAt: number }) {
      await pool.query(sql.unsafe`
        UPDATE gdpr_requests SET status = 'escalated', escalated_at = coalesce(escalated_at, now()), updated_at = now()
        WHERE request_id = ${i.requestId} AND NOT (status = ANY(${sql.array(terminal, 'text')}))`);
      await recordAudit(pool, {
        actor: auditActor(i.workflowId),
        action: `gdpr.${i.kind}.escalated`,
        subjectType: 'gdpr_request',
        subjectId: i.requestId,
        entryKey: `gdpr:${i.requestId}:escalated:${i.dueAt}`,
        details: { dueAt: at(i.dueAt) },
      });
    },

    /** Art. 12(3): the extended deadline and its reason, once. */
    async extendRequest(i: {
      requestId: string;
      workflowId: string;
      kind: RequestKind;
      extendedDueAt: number;
      reason: string;
      by: string;
    }): Promise<void> {
      await pool.query(sql.unsafe`
        UPDATE gdpr_requests SET extended_due_at = ${at(i.extendedDueAt)}, extension_reason = ${i.reason},
          updated_at = now()
        WHERE request_id = ${i.requestId} AND extended_due_at IS NULL`);
      await recordAudit(pool, {
        actor: i.by,
        action: `gdpr.${i.kind}.extended`,
        subjectType: 'gdpr_request',
        subjectId: i.requestId,
        entryKey: `gdpr:${i.requestId}:extended`,
        details: { extendedDueAt: at(i.extendedDueAt), reason: i.reason, workflowId: i.workflowId },
      });
    },

    /** The request's end: outcome, proof or archive, and one audit entry. */
    async completeRequest(i: {
      requestId: string;
      workflowId: string;
      kind: RequestKind;
      outcome: RequestOutcome;
      status: 'completed' | 'failed';
      failureReason?: string;
      certificate?: { key: string; sha256: string };
      archive?: { key: string; sha256: string; bytes: number };
    }): Promise<void> {
      await pool.query(sql.unsafe`
        UPDATE gdpr_requests SET status = ${i.status}, outcome = ${i.outcome},
          failure_reason = ${i.failureReason ?? null}, completed_at = coalesce(completed_at, now()),
          proof_key = ${i.certificate?.key ?? null}, certificate_sha256 = ${i.certificate?.sha256 ?? null},
          export_key = ${i.archive?.key ?? null}, export_sha256 = ${i.archive?.sha256 ?? null},
          export_bytes = ${i.archive?.bytes ?? null}, updated_at = now()
        WHERE request_id = ${i.requestId} AND NOT (status = ANY(${sql.array(terminal, 'text')}))`);
      await recordAudit(pool, {
        actor: auditActor(i.workflowId),
        action: `gdpr.${i.kind}.${i.outcome === 'erased' ? 'certified' : i.outcome}`,
        subjectType: 'gdpr_request',
        subjectId: i.requestId,
        entryKey: `gdpr:${i.requestId}:completed`,
        details: {
          outcome: i.outcome,
          ...(i.certificate ? { certificateKey: i.certificate.key, sha256: i.certificate.sha256 } : {}),
          ...(i.archive
            ? { exportKey: i.archive.key, sha256: i.archive.sha256, bytes: i.archive.bytes }
            : {}),
          ...(i.failureReason ? { failureReason: i.failureReason } : {}),
        },
      });
    },
  };
}

/**
 * A store's step started (again): status `working`, one more attempt, and the counts seen before the
 * first deletion kept from the first attempt (a retry after a crash finds less, or nothing). Returns the
 * first counts.
 */
export async function storeWorking(
  db: CommonQueryMethods,
  requestId: string,
  store: ErasureStore,
  found: Counts | null,
): Promise<Counts> {
  const row = await db.one(sql.type(FoundRow)`
    INSERT INTO gdpr_request_stores (request_id, store, status, found, attempts)
    VALUES (${requestId}, ${store}, 'working', ${found === null ? null : sql.jsonb(found)}, 1)
    ON CONFLICT (request_id, store) DO UPDATE SET
      status = CASE WHEN gdpr_request_stores.status IN ('verified', 'exported') THEN gdpr_request_stores.status
                    ELSE 'working' END,
      attempts = gdpr_request_stores.attempts + 1,
      found = coalesce(gdpr_request_stores.found, EXCLUDED.found),
      updated_at = now()
    RETURNING found`);
  return row.found ?? found ?? {};
}

/** A store's step ended: `done` (removed, not yet verified), `verified` / `residue`, or `exported`. */
export async function storeStatus(
  db: CommonQueryMethods,
  requestId: string,
  store: ErasureStore,
  status: 'done' | 'verified' | 'residue' | 'exported',
  residue: Counts | null = null,
): Promise<void> {
  await db.query(sql.unsafe`
    INSERT INTO gdpr_request_stores (request_id, store, status, residue, verified_at)
    VALUES (${requestId}, ${store}, ${status}, ${residue === null ? null : sql.jsonb(residue)},
            ${status === 'verified' ? sql.fragment`now()` : null})
    ON CONFLICT (request_id, store) DO UPDATE SET
      status = EXCLUDED.status, residue = EXCLUDED.residue,
      verified_at = coalesce(EXCLUDED.verified_at, gdpr_request_stores.verified_at), updated_at = now()`);
}
