import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

/**
 * The append-only audit log (the database refuses UPDATE, DELETE and TRUNCATE). Every operator,
 * finance and compliance action writes one entry: who, what, which subject, from which request.
 * Details carry IDs and amounts, never personal data: the log outlives an erasure.
 */
export interface AuditEntry {
  /** The token subject (a person or a service), or `workflow:<id>` for a workflow's own step. */
  actor: string;
  /** `<slice>.<verb>`, e.g. `workflow.cancel`, `royalties.approve`, `gdpr.erasure.certified`. */
  action: string;
  subjectType: string;
  subjectId: string;
  requestId?: string;
  details?: Record<string, unknown>;
  /**
   * A natural key for entries written by retried steps (activities): an entry with a key already in the
   * log is not written again.
   */
  entryKey?: string;
}

const Written = z.object({ audit_id: z.number() });

/** Appends one entry; with an `entryKey` seen before, writes nothing. Returns the entry's ID, if written. */
export async function recordAudit(db: CommonQueryMethods, e: AuditEntry): Promise<number | null> {
  const values = sql.fragment`${e.actor}, ${e.action}, ${e.subjectType}, ${e.subjectId}, ${e.requestId ?? null},
    ${e.entryKey ?? null}, ${sql.jsonb((e.details ?? {}) as Parameters<typeof sql.jsonb>[0])}`;
  if (!e.entryKey) {
    const row = await db.one(sql.type(Written)`
      INSERT INTO audit_log (actor, action, subject_type, subject_id, request_id, entry_key, details)
      VALUES (${values}) RETURNING audit_id`);
    return row.audit_id;
  }
  // One writer per key at a time (a transaction-scoped advisory lock), then insert unless present.
  return db.transaction(async (tx) => {
    await tx.query(sql.unsafe`SELECT pg_advisory_xact_lock(hashtextextended(${e.entryKey as string}, 7))`);
    const row = await tx.maybeOne(sql.type(Written)`
      INSERT INTO audit_log (actor, action, subject_type, subject_id, request_id, entry_key, details)
      SELECT ${values}
      WHERE NOT EXISTS (SELECT 1 FROM audit_log WHERE entry_key = ${e.entryKey as string})
      RETURNING audit_id`);
    return row?.audit_id ?? null;
  });
}
