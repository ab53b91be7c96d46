import fp from 'fastify-plugin';
import type { Scope, Principal } from '../auth/scopes';
import type { Verifier } from '../auth/verifier';
import { ForbiddenError } from '../../lib/errors';

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
export default fp<{ verify: Verifier }>(async (app, { verify }) => {
  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (request) => {
    const cfg = request.routeOptions.config;
    if (cfg.public || !request.routeOptions.url) return; // unknown routes fall through to the 404 handler
    request.principal = await verify(request.headers.authorization);
    const needed = cfg.scopes ?? [];
    if (needed.length && !needed.some((s) => request.principal.scopes.includes(s))) {
      throw new ForbiddenError(`This needs one of the scopes: ${needed.join(', ')}.`);
    }
  });
});
