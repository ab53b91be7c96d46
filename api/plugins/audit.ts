import fp from 'fastify-plugin';
import type { DatabasePool } from 'slonik';
import { recordAudit } from '../../lib/audit';

export interface AuditSubject {
  type: string;
  id: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route is an action someone answers for: a successful answer writes one audit_log entry
     * (who: the token's subject; what: `action`; which: `subject`; the request ID) before it is sent.
     */
    audit?: { action: string; subject: (request: FastifyRequest) => AuditSubject };
  }
  interface FastifyRequest {
    /** IDs and amounts the handler adds to its audit entry (never personal data). */
    auditDetails: Record<string, unknown> | null;
    /** Set by a handler that names its subject only once it exists (a new run's ID). */
    auditSubject: AuditSubject | null;
  }
}

/** Writes the audit entry of every successful audited request, before the answer leaves. */
export default fp<{ pool: DatabasePool }>(async (app, { pool }) => {
  app.decorateRequest('auditDetails', null);
  app.decorateRequest('auditSubject', null);
  app.addHook('onSend', async (request, reply, payload) => {
    const audit = request.routeOptions.config.audit;
    if (!audit || reply.statusCode >= 400 || !request.principal) return payload;
    const subject = request.auditSubject ?? audit.subject(request);
    await recordAudit(pool, {
      actor: request.principal.sub,
      action: audit.action,
      subjectType: subject.type,
      subjectId: subject.id,
      requestId: request.id,
      details: { scopes: request.principal.scopes, status: reply.statusCode, ...request.auditDetails },
    });
    return payload;
  });
});
