import { createHash } from 'node:crypto';
import stableStringify from 'fast-json-stable-stringify';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { CadenzaError } from '../../lib/errors';

/**
 * Idempotency-Keys bound to their request, as payment APIs bind them: a key is remembered with the
 * caller, the route, the user acted for (the target) and a SHA-256 of the body, and maps onto the
 * resource the first request made (a subscription, a workflow). The same key with another request is
 * refused with 422; keys are kept in PostgreSQL, beyond Temporal's retention, so a key never maps onto a
 * new run under an old ID.
 */
export interface IdempotentRequest {
  /** The token's subject. */
  caller: string;
  /** A stable name of the route (not its URL): keys of different routes never meet. */
  route: string;
  /** The header's value; undefined when the caller sent none (then nothing is remembered). */
  key: string | undefined;
  /** Whom the request acts for (a user ID), or '-'. */
  target: string;
  /** The request body: its canonical JSON is hashed (property order does not matter). */
  body: unknown;
}

export class IdempotencyKeyReusedError extends CadenzaError {
  constructor(detail: string) {
    super('idempotency-key-reused', 422, 'Idempotency-Key reused with another request', detail);
  }
}

const Row = z.object({ target: z.string(), request_sha256: z.string(), resource_id: z.string() });

export const requestFingerprint = (body: unknown) =>
  createHash('sha256')
    .update(stableStringify(body ?? null))
    .digest('hex');

function matching(request: IdempotentRequest, row: z.infer<typeof Row>): string {
  if (row.target !== request.target || row.request_sha256 !== requestFingerprint(request.body)) {
    throw new IdempotencyKeyReusedError(
      `Idempotency-Key "${request.key}" was used for another request; use a new key for a new request.`,
    );
  }
  return row.resource_id;
}

/** The resource an earlier request with this key made, or undefined for a new key (422 if it differs). */
export async function recallIdempotencyKey(
  pool: DatabasePool,
  request: IdempotentRequest,
): Promise<string | undefined> {
  if (!request.key) return undefined;
  const row = await pool.maybeOne(sql.type(Row)`
    SELECT target, request_sha256, resource_id FROM api_idempotency_keys
    WHERE caller = ${request.caller} AND route = ${request.route} AND idempotency_key = ${request.key}`);
  return row ? matching(request, row) : undefined;
}

/**
 * Binds the key to this request and `resourceId`; returns the resource the key maps to (another one when
 * an identical request won the race; 422 when a different one did).
 */
export async function rememberIdempotencyKey(
  pool: DatabasePool,
  request: IdempotentRequest,
  resourceId: string,
): Promise<string> {
  if (!request.key) return resourceId;
  const row = await pool.maybeOne(sql.type(Row)`
    WITH inserted AS (
      INSERT INTO api_idempotency_keys (caller, route, idempotency_key, target, request_sha256, resource_id)
      VALUES (${request.caller}, ${request.route}, ${request.key}, ${request.target},
              ${requestFingerprint(request.body)}, ${resourceId})
      ON CONFLICT (caller, route, idempotency_key) DO NOTHING
      RETURNING target, request_sha256, resource_id)
    SELECT target, request_sha256, resource_id FROM inserted
    UNION ALL
    SELECT target, request_sha256, resource_id FROM api_idempotency_keys
    WHERE caller = ${request.caller} AND route = ${request.route} AND idempotency_key = ${request.key}
      AND NOT EXISTS (SELECT 1 FROM inserted)`);
  if (row) return matching(request, row);
  // A concurrent request inserted the key after this statement's snapshot: read it now.
  return (await recallIdempotencyKey(pool, request)) as string;
}
