import { createHash, randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { FastifyRequest } from 'fastify';
import type { Client as Minio } from 'minio';
import type { DatabasePool } from 'slonik';
import type { TaskQueue } from '../../lib/task-queues';
import type { Principal, Scope } from '../auth/scopes';
import { ConflictError, NotFoundError, UnavailableError } from '../../lib/errors';
import { bucketName } from '../../lib/clients/minio';
import { EXPORTS_EXPIRY_DAYS } from '../../sql/migrate/minio';
import type { gdprErasure, gdprExport } from '../../workflows';
import {
  ERASURE_REASONS,
  ERASURE_WORKFLOW,
  EXPORT_LINK_DAYS,
  EXPORT_WORKFLOW,
  EXTENSION_REASONS,
  MAX_EXTENSION_MONTHS,
  REQUEST_STATUSES,
  SEARCH,
  TASK_QUEUE,
  extendDeadline,
  gdprErasureWorkflowId,
  gdprExportWorkflowId,
  type ErasureReason,
  type ExtensionReason,
} from '../../workflows/compliance/contract';
import { actingUser, mustSee } from '../lib/acting';
import { idempotencyKey, startOnce } from '../lib/start';
import { problemFromFailure } from '../problems';
import {
  gdprRequest,
  gdprRequests,
  gdprRequestStores,
  openGdprRequest,
  userState,
  type RequestRow,
} from '../queries/compliance';
import { IdempotencyHeaders, withProblems } from '../schemas';

/**
 * GDPR requests: erasure (Art. 17) and export (Art. 15/20). Compliance acts for anyone; a listener asks
 * for their own (and loses their token the moment their erasure stops new data). Starting answers 202 with
 * the request and where to follow it; reads come from PostgreSQL, which the workflows keep current.
 */
export interface GdprApiDeps {
  temporal: Client;
  /** Absent in an API built without its stores (a bench's): the routes then answer 503. */
  pool?: DatabasePool;
  minio?: Minio;
  bucketPrefix?: string;
}

const COMPLIANCE: readonly Scope[] = ['compliance'];
/** Audited requests name their subject once the request ID is known (the handler sets it). */
const pending = () => ({ type: 'gdpr_request', id: 'pending' });
const uuid = { format: 'uuid' } as const;
const CERTIFICATE_LINK_SECONDS = 15 * 60;
const DAY_MS = 86_400_000;

// The link lives 7 days and the bucket removes the object on day 8: a link never outlives its archive.
if (EXPORT_LINK_DAYS >= EXPORTS_EXPIRY_DAYS) throw new Error('export links must expire before their objects');

const Started = Type.Object({
  requestId: Type.String(uuid),
  workflowId: Type.String(),
  statusUrl: Type.String(),
  existing: Type.Boolean({ description: 'true when an open request of this kind for the user answered' }),
});

const nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const StoreProgress = Type.Object({
  status: Type.String({ description: 'pending, working, done, verified, residue, exported' }),
  found: Type.Union([Type.Record(Type.String(), Type.Integer()), Type.Null()], {
    description: 'counts seen before the first deletion (or exported)',
  }),
  residue: Type.Union([Type.Record(Type.String(), Type.Integer()), Type.Null()]),
  attempts: Type.Integer(),
  verifiedAt: nullable(Type.String({ format: 'date-time' })),
  updatedAt: Type.String({ format: 'date-time' }),
});
const RequestView = Type.Object(
  {
    requestId: Type.String(uuid),
    joinedRequestId: nullable(Type.String(uuid)),
    kind: Type.Union([Type.Literal('erasure'), Type.Literal('export')]),
    userId: Type.String(uuid),
    status: Type.Union(REQUEST_STATUSES.map((s) => Type.Literal(s))),
    outcome: nullable(Type.String({ description: 'erased, exported, nothing_left, unknown_user, canceled' })),
    requester: Type.String(),
    reason: nullable(Type.String()),
    workflowId: Type.String(),
    receivedAt: nullable(Type.String({ format: 'date-time' })),
    dueAt: nullable(Type.String({ format: 'date-time' })),
    extendedDueAt: nullable(Type.String({ format: 'date-time' })),
    extensionReason: nullable(Type.String()),
    escalated: Type.Boolean(),
    completedAt: nullable(Type.String({ format: 'date-time' })),
    failureReason: nullable(Type.String()),
    stores: Type.Record(Type.String(), StoreProgress),
    certificateUrl: nullable(
      Type.String({ description: 'the proof (no personal data), a link for 15 minutes' }),
    ),
    certificateSha256: nullable(Type.String()),
    exportUrl: nullable(
      Type.String({
        description: `the archive, a link valid until ${EXPORT_LINK_DAYS} days after it was made`,
      }),
    ),
    exportExpiresAt: nullable(Type.String({ format: 'date-time' })),
    exportBytes: Type.Union([Type.Integer(), Type.Null()]),
    exportSha256: nullable(Type.String()),
  },
  { title: 'GdprRequest' },
);

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The same caller, kind and Idempotency-Key always name the same request; otherwise a new one. */
function requestIdFor(principal: Principal, kind: string, key: string | undefined): string {
  if (!key) return randomUUID();
  const h = createHash('sha256').update(`${principal.sub}\n${kind}\n${key}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16] as string, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export const gdprRoutes: FastifyPluginAsyncTypebox<GdprApiDeps> = async (app, deps) => {
  const { temporal } = deps;
  const stores = () => {
    if (!deps.pool || !deps.minio)
      throw new UnavailableError('GDPR requests are not configured in this API.');
    return { pool: deps.pool, minio: deps.minio };
  };
  const statusUrl = (requestId: string) => `/v1/gdpr/requests/${requestId}`;

  /** A run accepted a moment ago, not yet recorded in PostgreSQL by its first step. */
  async function runningRequest(kind: 'erasure' | 'export', userId: string): Promise<string | undefined> {
    const type = kind === 'erasure' ? ERASURE_WORKFLOW : EXPORT_WORKFLOW;
    const query = `WorkflowType = '${type}' AND ${SEARCH.userId.name} = '${userId}' AND ExecutionStatus = 'Running'`;
    for await (const run of temporal.workflow.list({ query })) {
      const id = run.typedSearchAttributes.get(SEARCH.requestId);
      if (id) return id;
    }
    return undefined;
  }

  async function start(
    request: FastifyRequest,
    kind: 'erasure' | 'export',
    userId: string,
    reason: ErasureReason | null,
  ) {
    const { pool } = stores();
    const user = await userState(pool, userId);
    if (!user) throw new NotFoundError(`No user ${userId}.`);
    const open =
      (await openGdprRequest(pool, userId, kind))?.request_id ?? (await runningRequest(kind, userId));
    const requestId =
      open ?? requestIdFor(request.principal, kind, idempotencyKey(request.headers['idempotency-key']));
    const workflowId =
      kind === 'erasure' ? gdprErasureWorkflowId(requestId) : gdprExportWorkflowId(requestId);
    let existing = Boolean(open);
    if (!open) {
      const options = {
        workflowId,
        taskQueue: TASK_QUEUE as TaskQueue,
        typedSearchAttributes: [
          { key: SEARCH.requestId, value: requestId },
          { key: SEARCH.userId, value: userId },
          { key: SEARCH.status, value: 'received' },
          { key: SEARCH.escalated, value: false },
        ],
      };
      const requester = request.principal.sub;
      const started =
        kind === 'erasure'
          ? await startOnce<typeof gdprErasure>(temporal, ERASURE_WORKFLOW, {
              ...options,
              args: [{ requestId, userId, requester, reason: reason ?? 'data_subject_request' }],
            })
          : await startOnce<typeof gdprExport>(temporal, EXPORT_WORKFLOW, {
              ...options,
              args: [{ requestId, userId, requester }],
            });
      existing = started.existing;
    }
    // The audit plugin writes the entry when the answer goes out.
    request.auditSubject = { type: 'gdpr_request', id: requestId };
    request.auditDetails = { userId, existing, ...(reason ? { reason } : {}) };
    return { requestId, workflowId, statusUrl: statusUrl(requestId), existing };
  }

  app.post(
    '/gdpr/erasure-requests',
    {
      config: {
        scopes: ['compliance', 'listener'],
        audit: { action: 'gdpr.erasure.request', subject: pending },
      },
      schema: {
        tags: ['gdpr'],
        summary: 'Erase a person from every store (GDPR Art. 17), with proof',
        description:
          'Starts gdpr-erasure-<requestId>. A listener erases themselves (their token stops working at once); ' +
          'compliance names the user and an Art. 17(1) ground. A request while one is open joins it.',
        headers: IdempotencyHeaders,
        body: Type.Object(
          {
            userId: Type.Optional(Type.String(uuid)),
            reason: Type.Optional(
              Type.Unsafe<ErasureReason>({
                type: 'string',
                enum: [...ERASURE_REASONS],
                description: 'an Art. 17(1) ground; a listener asking for themselves: data_subject_request',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: withProblems({ 202: Started }),
      },
    },
    async (request, reply) => {
      const userId = actingUser(request.principal, request.body.userId, { anyone: COMPLIANCE });
      const reason = request.body.reason ?? 'data_subject_request';
      return reply.code(202).send(await start(request, 'erasure', userId, reason));
    },
  );

  app.post(
    '/gdpr/export-requests',
    {
      config: {
        scopes: ['compliance', 'listener'],
        audit: { action: 'gdpr.export.request', subject: pending },
      },
      schema: {
        tags: ['gdpr'],
        summary: 'Export everything about a person (GDPR Art. 15/20) as a zip behind a 7-day link',
        headers: IdempotencyHeaders,
        body: Type.Object({ userId: Type.Optional(Type.String(uuid)) }, { additionalProperties: false }),
        response: withProblems({ 202: Started }),
      },
    },
    async (request, reply) => {
      const userId = actingUser(request.principal, request.body.userId, { anyone: COMPLIANCE });
      return reply.code(202).send(await start(request, 'export', userId, null));
    },
  );

  /** The request as the caller may see it, following a join; 404 to anyone else. */
  async function visible(request: FastifyRequest, requestId: string): Promise<RequestRow> {
    const { pool } = stores();
    const row = await gdprRequest(pool, requestId);
    if (row) {
      mustSee(request.principal, row.user_id, 'such request', COMPLIANCE);
      return row;
    }
    // Accepted a moment ago, not yet recorded by its run: the run's search attributes know the owner.
    for (const workflowId of [gdprErasureWorkflowId(requestId), gdprExportWorkflowId(requestId)]) {
      try {
        const d = await temporal.workflow.getHandle(workflowId).describe();
        const userId = d.typedSearchAttributes.get(SEARCH.userId);
        if (!userId) continue;
        mustSee(request.principal, userId, 'such request', COMPLIANCE);
        const now = Date.now();
        return {
          request_id: requestId,
          user_id: userId,
          kind: workflowId.startsWith('gdpr-erasure-') ? 'erasure' : 'export',
          status: 'received',
          requester: '',
          reason: null,
          workflow_id: workflowId,
          joined_request_id: null,
          received_at: d.startTime.getTime(),
          due_at: now,
          extended_due_at: null,
          extension_reason: null,
          escalated_at: null,
          completed_at: null,
          outcome: null,
          failure_reason: null,
          proof_key: null,
          certificate_sha256: null,
          export_key: null,
          export_sha256: null,
          export_bytes: null,
        };
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    }
    throw new NotFoundError(`No such request ${requestId}.`);
  }

  async function view(row: RequestRow, recorded: boolean) {
    const { pool, minio } = stores();
    const joined = row.joined_request_id ? await gdprRequest(pool, row.joined_request_id) : null;
    const r = joined ?? row;
    const progress = recorded ? await gdprRequestStores(pool, r.request_id) : [];
    let exportUrl: string | null = null;
    let exportExpiresAt: number | null = null;
    if (r.export_key && r.completed_at !== null) {
      exportExpiresAt = r.completed_at + EXPORT_LINK_DAYS * DAY_MS;
      const seconds = Math.floor((exportExpiresAt - Date.now()) / 1000);
      if (seconds > 0)
        exportUrl = await minio.presignedGetObject(
          bucketName('exports', deps.bucketPrefix ?? ''),
          r.export_key,
          seconds,
        );
    }
    const certificateUrl = r.proof_key
      ? await minio.presignedGetObject(
          bucketName('compliance', deps.bucketPrefix ?? ''),
          r.proof_key,
          CERTIFICATE_LINK_SECONDS,
        )
      : null;
    return {
      requestId: row.request_id,
      joinedRequestId: row.joined_request_id,
      kind: r.kind,
      userId: r.user_id,
      status: (recorded ? r.status : 'received') as (typeof REQUEST_STATUSES)[number],
      outcome: r.outcome,
      requester: row.requester,
      reason: row.reason,
      workflowId: r.workflow_id ?? '',
      receivedAt: iso(row.received_at),
      dueAt: recorded ? iso(r.due_at) : null,
      extendedDueAt: iso(r.extended_due_at),
      extensionReason: r.extension_reason,
      escalated: r.escalated_at !== null,
      completedAt: iso(r.completed_at),
      failureReason: r.failure_reason,
      stores: Object.fromEntries(
        progress.map((s) => [
          s.store,
          {
            status: s.status,
            found: s.found,
            residue: s.residue,
            attempts: s.attempts,
            verifiedAt: iso(s.verified_at),
            updatedAt: iso(s.updated_at) as string,
          },
        ]),
      ),
      certificateUrl,
      certificateSha256: r.certificate_sha256,
      exportUrl,
      exportExpiresAt: iso(exportExpiresAt),
      exportBytes: r.export_bytes,
      exportSha256: r.export_sha256,
    };
  }

  app.get(
    '/gdpr/requests/:requestId',
    {
      config: { scopes: ['compliance', 'listener'] },
      schema: {
        tags: ['gdpr'],
        summary: 'A GDPR request: status, per-store progress, certificate and export links',
        params: Type.Object({ requestId: Type.String(uuid) }),
        response: withProblems({ 200: RequestView }),
      },
    },
    async (request) => {
      const row = await visible(request, request.params.requestId);
      return view(row, row.requester !== '');
    },
  );

  app.get(
    '/gdpr/requests',
    {
      config: { scopes: ['compliance', 'listener'] },
      schema: {
        tags: ['gdpr'],
        summary: 'GDPR requests, newest first (a listener sees their own)',
        querystring: Type.Object({
          status: Type.Optional(Type.Union(REQUEST_STATUSES.map((s) => Type.Literal(s)))),
          kind: Type.Optional(Type.Union([Type.Literal('erasure'), Type.Literal('export')])),
          userId: Type.Optional(Type.String(uuid)),
          limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
        }),
        response: withProblems({ 200: Type.Object({ requests: Type.Array(RequestView) }) }),
      },
    },
    async (request) => {
      const q = request.query;
      const { pool } = stores();
      const mine = !request.principal.scopes.includes('compliance');
      const rows = await gdprRequests(pool, { ...q, userId: mine ? request.principal.sub : q.userId });
      return { requests: await Promise.all(rows.map((r) => view(r, true))) };
    },
  );

  app.post(
    '/gdpr/requests/:requestId/extension',
    {
      config: {
        scopes: ['compliance'],
        audit: {
          action: 'gdpr.request.extension',
          subject: (r) => ({ type: 'gdpr_request', id: (r.params as { requestId: string }).requestId }),
        },
      },
      schema: {
        tags: ['gdpr'],
        summary: 'Extend the deadline of an open request (Art. 12(3)), once, by up to two months',
        params: Type.Object({ requestId: Type.String(uuid) }),
        body: Type.Object(
          {
            months: Type.Integer({ minimum: 1, maximum: MAX_EXTENSION_MONTHS }),
            reason: Type.Unsafe<ExtensionReason>({ type: 'string', enum: [...EXTENSION_REASONS] }),
          },
          { additionalProperties: false },
        ),
        response: withProblems({
          200: Type.Object({ requestId: Type.String(uuid), dueAt: Type.String({ format: 'date-time' }) }),
          409: Type.Ref('Problem'),
        }),
      },
    },
    async (request) => {
      const row = await visible(request, request.params.requestId);
      if (!['received', 'in_progress', 'verifying', 'escalated'].includes(row.status))
        throw new ConflictError(
          `The request is ${row.status}; only an open request can be extended.`,
          'gdpr-extension-refused',
        );
      const handle = temporal.workflow.getHandle(row.workflow_id ?? gdprErasureWorkflowId(row.request_id));
      const { months, reason } = request.body;
      const answer = await handle
        .executeUpdate(extendDeadline, { args: [{ months, reason, by: request.principal.sub }] })
        .catch((err: unknown) => {
          throw problemFromFailure(err);
        });
      request.auditDetails = { kind: row.kind, months, reason, dueAt: answer.dueAt };
      return { requestId: row.request_id, dueAt: answer.dueAt };
    },
  );
};
