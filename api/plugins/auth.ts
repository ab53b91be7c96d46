import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import type { Scope, Principal } from '../auth/scopes';
import type { Verifier } from '../auth/verifier';
import { AddressLimiter } from '../auth/address-limiter';
import { ForbiddenError, TooManyRequestsError, UnauthorizedError } from '../../lib/errors';

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

export interface AuthOptions {
  verify: Verifier;
  /** Requests per minute per address without a valid token (CADENZA_API_AUTH_FAILURES_PER_MINUTE). */
  failuresPerMinute: number;
}

/**
 * Authentication on every route: a route is public only when it says so (health, metrics, docs, JWKS).
 * A route without `scopes` accepts any valid token; with them, the token needs one of them.
 *
 * Order, cheapest first: a token remembered as verified passes at once; otherwise the caller's address
 * must still have budget for failures (429 before any signature check), a token remembered as refused is
 * refused again, and only then is a signature verified. Every refusal spends the address's budget.
 */
export default fp<AuthOptions>(async (app, { verify, failuresPerMinute }) => {
  const limiter = new AddressLimiter(failuresPerMinute);
  const outcomes = new Counter({
    name: 'cadenza_api_auth_total',
    help: 'Authentication outcomes: remembered, verified, refused, address_limited',
    labelNames: ['outcome'] as const,
    registers: [app.metrics],
  });
  const remembered = outcomes.labels('remembered');
  app.decorateRequest('principal', null as unknown as Principal);

  async function authenticate(request: FastifyRequest): Promise<Principal> {
    const header = request.headers.authorization;
    const known = verify.remembered(header);
    if (known && !(known instanceof UnauthorizedError)) {
      remembered.inc();
      return known;
    }
    const wait = limiter.blockedFor(request.ip);
    if (wait > 0) {
      outcomes.inc({ outcome: 'address_limited' });
      throw new TooManyRequestsError(
        'Too many requests without a valid token from this address; retry after the time in Retry-After.',
        wait,
      );
    }
    try {
      const principal = await verify(header);
      outcomes.inc({ outcome: 'verified' });
      return principal;
    } catch (err) {
      if (err instanceof UnauthorizedError) {
        limiter.failed(request.ip);
        outcomes.inc({ outcome: 'refused' });
      }
      throw err;
    }
  }

  app.addHook('onRequest', async (request) => {
    const cfg = request.routeOptions.config;
    if (cfg.public || !request.routeOptions.url) return; // unknown routes fall through to the 404 handler
    request.principal = await authenticate(request);
    // Checks on the verified principal (remembered or not) go here, before the scopes.
    const needed = cfg.scopes ?? [];
    if (needed.length && !needed.some((s) => request.principal.scopes.includes(s))) {
      throw new ForbiddenError(`This needs one of the scopes: ${needed.join(', ')}.`);
    }
  });
});
