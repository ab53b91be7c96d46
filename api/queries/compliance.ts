import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

/**
 * The GDPR requests as the workflows keep them in PostgreSQL: what the API answers from (fast, and right
 * while a worker is down or a run is past retention). A joined request answers with the request it joined.
 */

const RequestRow = z.object({
  request_id: z.string(),
  user_id: z.string(),
  kind: z.enum(['erasure', 'export']),
  status: z.string(),
  requester: z.string(),
  reason: z.string().nullable(),
  workflow_id: z.string().nullable(),
  joined_request_id: z.string().nullable(),
  received_at: z.number(),
  due_at: z.number(),
  extended_due_at: z.number().nullable(),
  extension_reason: z.string().nullable(),
  escalated_at: z.number().nullable(),
  completed_at: z.number().nullable(),
  outcome: z.string().nullable(),
  failure_reason: z.string().nullable(),
  proof_key: z.string().nullable(),
  certificate_sha256: z.string().nullable(),
  export_key: z.string().nullable(),
  export_sha256: z.string().nullable(),
  export_bytes: z.number().nullable(),
});
export type RequestRow = z.infer<typeof RequestRow>;

const StoreRow = z.object({
  store: z.string(),
  status: z.string(),
  found: z.record(z.number()).nullable(),
  residue: z.record(z.number()).nullable(),
  attempts: z.number(),
  verified_at: z.number().nullable(),
  updated_at: z.number(),
});
export type StoreRow = z.infer<typeof StoreRow>;

const columns = sql.fragment`request_id::text AS request_id, user_id::text AS user_id, kind, status, requester,
  reason, workflow_id, joined_request_id::text AS joined_request_id, received_at, due_at, extended_due_at,
  extension_reason, escalated_at, completed_at, outcome, failure_reason, proof_key, certificate_sha256,
  export_key, export_sha256, export_bytes`;

export async function gdprRequest(pool: DatabasePool, requestId: string): Promise<RequestRow | null> {
  return pool.maybeOne(
    sql.type(RequestRow)`SELECT ${columns} FROM gdpr_requests WHERE request_id = ${requestId}`,
  );
}

export async function gdprRequestStores(pool: DatabasePool, requestId: string): Promise<readonly StoreRow[]> {
  return pool.any(sql.type(StoreRow)`
    SELECT store, status, found, residue, attempts, verified_at, updated_at
    FROM gdpr_request_stores WHERE request_id = ${requestId} ORDER BY store`);
}

/** The open request of a kind for a user (a new one joins it). */
export async function openGdprRequest(
  pool: DatabasePool,
  userId: string,
  kind: 'erasure' | 'export',
): Promise<RequestRow | null> {
  return pool.maybeOne(sql.type(RequestRow)`
    SELECT ${columns} FROM gdpr_requests
    WHERE user_id = ${userId} AND kind = ${kind} AND status IN ('received', 'in_progress', 'verifying', 'escalated')`);
}

export async function gdprRequests(
  pool: DatabasePool,
  filter: { status?: string; kind?: string; userId?: string; limit: number },
): Promise<readonly RequestRow[]> {
  const where = [
    sql.fragment`status <> 'joined'`,
    ...(filter.status ? [sql.fragment`status = ${filter.status}`] : []),
    ...(filter.kind ? [sql.fragment`kind = ${filter.kind}`] : []),
    ...(filter.userId ? [sql.fragment`user_id = ${filter.userId}`] : []),
  ];
  return pool.any(sql.type(RequestRow)`
    SELECT ${columns} FROM gdpr_requests WHERE ${sql.join(where, sql.fragment` AND `)}
    ORDER BY received_at DESC, request_id LIMIT ${filter.limit}`);
}

const UserRow = z.object({ erased: z.boolean() });

/** Whether the user exists (and is erased), or null. */
export async function userState(pool: DatabasePool, userId: string): Promise<{ erased: boolean } | null> {
  return pool.maybeOne(
    sql.type(UserRow)`SELECT erased_at IS NOT NULL AS erased FROM users WHERE user_id = ${userId}`,
  );
}
