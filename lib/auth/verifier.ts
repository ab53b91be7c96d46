import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../config';
import { UnauthorizedError } from '../errors';
import { devJwks } from './dev-issuer';
import { parseScopes, type Principal } from './scopes';

export type Verifier = (bearer: string | undefined) => Promise<Principal>;

/** Verifies bearer JWTs against the configured JWKS (an OIDC issuer's, or the development issuer's). */
export async function createVerifier(auth: Config['auth']): Promise<Verifier> {
  const keySet: JWTVerifyGetKey = auth.jwksUrl
    ? createRemoteJWKSet(new URL(auth.jwksUrl), { cooldownDuration: 30_000 })
    : createLocalJWKSet(await devJwks(auth));
  return async (header) => {
    const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!m) throw new UnauthorizedError('Send an Authorization: Bearer <token> header.');
    try {
      const { payload } = await jwtVerify(m[1] as string, keySet, {
        issuer: auth.issuer,
        audience: auth.audience,
        algorithms: ['ES256', 'RS256', 'EdDSA'],
        clockTolerance: 5,
      });
      if (!payload.sub) throw new UnauthorizedError('The token has no subject.');
      return { sub: payload.sub, scopes: parseScopes(payload.scope ?? payload.scp) };
    } catch (err) {
      if (err instanceof UnauthorizedError) throw err;
      if (err instanceof errors.JWTExpired) throw new UnauthorizedError('The token has expired.');
      if (err instanceof errors.JWTClaimValidationFailed)
        throw new UnauthorizedError(`The token's ${err.claim} claim is not accepted.`);
      throw new UnauthorizedError('The token could not be verified.');
    }
  };
}
