import fp from 'fastify-plugin';
import type { Scope, Principal } from '../auth/scopes';
import type { Verifier } from '../auth/verifier';
import { ForbiddenError, UnauthorizedError } from '../../lib/errors';

/** Token subjects refused whatever their token (GDPR erasure): lib/erasure-lists.ts follows them. */
export interface DeniedSubjects {
  has(subject: string): boolean;
  readonly size: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** The route needs a token holding any one of these scopes; `public: true` opts out of auth. */
    scopes?: Scope[];
    public?: boolean;
  }
}

/**
 * Authentication on every route: a route is public only when it says so (health, metrics, docs, JWKS).
 * A route without `scopes` accepts any valid token; with them, the token needs one of them.
 */
export default fp<{ verify: Verifier; denied?: DeniedSubjects }>(async (app, { verify, denied }) => {
  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (request) => {
    const cfg = request.routeOptions.config;
    if (cfg.public || !request.routeOptions.url) return; // unknown routes fall through to the 404 handler
    request.principal = await verify(request.headers.authorization);
    // Checked after every verification, remembered or not: a denied subject is refused at once.
    if (denied?.size && denied.has(request.principal.sub.toLowerCase())) {
      throw new UnauthorizedError('This account is closed; its tokens are no longer accepted.');
    }
    const needed = cfg.scopes ?? [];
    if (needed.length && !needed.some((s) => request.principal.scopes.includes(s))) {
      throw new ForbiddenError(`This needs one of the scopes: ${needed.join(', ')}.`);
    }
  });
});
