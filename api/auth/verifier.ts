import { hash } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { ExpiringMap } from './expiring-map';
import type { Config } from '../../lib/config';
import { UnauthorizedError, UnavailableError } from '../../lib/errors';
import { devJwks } from './dev-issuer';
import { principalFromClaims, type Principal } from './scopes';

/**
 * Verifies a bearer header. `remembered` answers from memory only (a token verified or refused recently),
 * so the auth plugin can limit unknown tokens per address before paying for a signature check.
 */
export interface Verifier {
  (bearer: string | undefined): Promise<Principal>;
  remembered(bearer: string | undefined): Principal | UnauthorizedError | undefined;
}

/** Tokens verified, remembered at most this long: a key withdrawn from the JWKS stops working within it. */
const REMEMBER_MS = 60_000;
const REMEMBER_MAX = 10_000;
/** Tokens refused, remembered this long by their hash: a replayed forgery costs a lookup, not a verify. */
const REFUSED_MS = 30_000;
const REFUSED_MAX = 50_000;
/** Longer bearer values are refused unread: an access token is a few hundred bytes to a few KB. */
const MAX_TOKEN_CHARS = 8192;
const BEARER = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/i;

const copy = (p: Principal): Principal => ({ sub: p.sub, scopes: [...p.scopes] });

/**
 * Verifies bearer JWTs against the configured JWKS (an OIDC issuer's, or the development issuer's) and
 * checks the claims RFC 9068 and the JWT BCP (RFC 8725) ask for: iss, aud, exp required, a bounded
 * lifetime, iat not in the future, an access-token `typ` when the token names one, `sub` per role.
 * A token that verified is remembered by its exact text until it expires, for at most REMEMBER_MS: a
 * service sends the same token with every request, and an ES256 verify cost the API 0.4 ms a request
 * (7 % of its CPU at 100k ticks/s). A refused token is remembered by its SHA-256 for REFUSED_MS; only a
 * token the issuer's keys could not be fetched for is not remembered (that is our outage, not its fault).
 */
export async function createVerifier(auth: Config['auth']): Promise<Verifier> {
  if (auth.production && !auth.jwksUrl) {
    throw new Error('CADENZA_ENV=production needs CADENZA_AUTH_JWKS_URL: the development issuer is refused');
  }
  const keySet: JWTVerifyGetKey = auth.jwksUrl
    ? createRemoteJWKSet(new URL(auth.jwksUrl), { cooldownDuration: 30_000, timeoutDuration: 5_000 })
    : createLocalJWKSet(await devJwks(auth));
  const verified = new ExpiringMap<string, Principal>(REMEMBER_MAX);
  const refused = new ExpiringMap<string, UnauthorizedError>(REFUSED_MAX);
  // Concurrent requests with the same new token wait for one verify.
  const inFlight = new Map<string, Promise<Principal>>();

  const tokenOf = (header: string | undefined): string | UnauthorizedError => {
    if (!header) return new UnauthorizedError('Send an Authorization: Bearer <token> header.');
    if (header.length > MAX_TOKEN_CHARS + 7) return new UnauthorizedError('The bearer token is too long.');
    const m = BEARER.exec(header);
    return m ? (m[1] as string) : new UnauthorizedError('The Authorization header is not a bearer JWT.');
  };

  function remembered(header: string | undefined): Principal | UnauthorizedError | undefined {
    const token = tokenOf(header);
    if (typeof token !== 'string') return token;
    const known = verified.get(token);
    if (known) return copy(known);
    return refused.get(hash('sha256', token, 'base64url'));
  }

  async function check(token: string): Promise<Principal> {
    let payload: JWTPayload;
    try {
      const typ = decodeProtectedHeader(token).typ;
      if (typ !== undefined) {
        const t = String(typ)
          .toLowerCase()
          .replace(/^application\//, '');
        if (!auth.tokenTypes.includes(t))
          throw new UnauthorizedError(`A token of type "${String(typ)}" is not an access token here.`);
      }
      ({ payload } = await jwtVerify(token, keySet, {
        issuer: auth.issuer,
        audience: auth.audience,
        algorithms: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'],
        clockTolerance: auth.clockToleranceSeconds,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      throw refusal(err);
    }
    const now = Date.now() / 1000;
    const tolerance = auth.clockToleranceSeconds;
    const exp = payload.exp as number; // required, and checked to be a number, by jwtVerify
    if (payload.iat !== undefined && payload.iat > now + tolerance)
      throw new UnauthorizedError("The token's iat claim is in the future.");
    if (exp - (payload.iat ?? now) > auth.maxTokenLifetimeSeconds)
      throw new UnauthorizedError(
        `The token lives longer than ${auth.maxTokenLifetimeSeconds} s; ask the issuer for a shorter-lived one.`,
      );
    const principal = principalFromClaims(payload);
    if (principal instanceof UnauthorizedError) throw principal;
    verified.set(token, principal, Math.min(Date.now() + REMEMBER_MS, exp * 1000));
    return principal;
  }

  const verify = async (header: string | undefined): Promise<Principal> => {
    const known = remembered(header);
    if (known instanceof UnauthorizedError) throw known;
    if (known) return known;
    const token = header ? (tokenOf(header) as string) : '';
    let pending = inFlight.get(token);
    if (!pending) {
      pending = check(token)
        .catch((err: unknown) => {
          if (err instanceof UnauthorizedError)
            refused.set(hash('sha256', token, 'base64url'), err, Date.now() + REFUSED_MS);
          throw err;
        })
        .finally(() => inFlight.delete(token));
      inFlight.set(token, pending);
    }
    return copy(await pending);
  };
  return Object.assign(verify, { remembered });
}

/** jose's errors as the refusal a client can act on; an unreachable JWKS is ours (503), never cached. */
function refusal(err: unknown): Error {
  if (err instanceof UnauthorizedError) return err;
  if (issuerUnreachable(err))
    return new UnavailableError("The token issuer's keys could not be fetched; retry shortly.");
  if (err instanceof errors.JWTExpired) return new UnauthorizedError('The token has expired.');
  if (err instanceof errors.JWTClaimValidationFailed)
    return new UnauthorizedError(
      err.reason === 'missing'
        ? `The token has no ${err.claim} claim.`
        : `The token's ${err.claim} claim is not accepted.`,
    );
  if (err instanceof errors.JWKSNoMatchingKey)
    return new UnauthorizedError("The token's signing key is not one of the issuer's keys.");
  return new UnauthorizedError('The token could not be verified.');
}

function issuerUnreachable(err: unknown): boolean {
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return true;
  if (err instanceof errors.JOSEError)
    return err.code === 'ERR_JOSE_GENERIC' && /JSON Web Key Set/.test(err.message); // a non-200 answer
  // fetch's own failure (refused, reset, DNS): a TypeError whose cause carries the socket's code.
  return err instanceof TypeError && err.message === 'fetch failed';
}
