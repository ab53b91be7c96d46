import type { JWTPayload } from 'jose';
import { UnauthorizedError } from '../../lib/errors';

/** One scope per role (DESIGN §6). A token's `scope` claim lists them, space-separated (OAuth 2.0). */
export const SCOPES = ['listener', 'creator', 'finance', 'compliance', 'operator', 'service'] as const;
export type Scope = (typeof SCOPES)[number];

/** Roles whose subject is a user (a listener) or an artist (a creator): their `sub` is that UUID. */
export const PERSON_SCOPES: readonly Scope[] = ['listener', 'creator'];

export interface Principal {
  /** The token's subject: a user ID for listeners and creators (lower case), a client ID for services. */
  sub: string;
  scopes: Scope[];
}

export function parseScopes(claim: unknown): Scope[] {
  const raw = Array.isArray(claim) ? claim : typeof claim === 'string' ? claim.split(' ') : [];
  return raw.filter((s): s is Scope => (SCOPES as readonly string[]).includes(s as string));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A client ID or user ID: printable, no spaces, bounded (it reaches logs, audit rows and rate-limit keys). */
const SUBJECT = /^[\x21-\x7e]{1,255}$/;

/**
 * The principal a verified token names, or why its subject is refused: `sub` is a string for every role,
 * and for listener and creator tokens a UUID (the user or artist they act as), so no store ever sees a
 * subject it cannot hold.
 */
export function principalFromClaims(payload: JWTPayload): Principal | UnauthorizedError {
  const { sub } = payload;
  if (typeof sub !== 'string' || !SUBJECT.test(sub))
    return new UnauthorizedError("The token's sub claim must be 1–255 printable characters without spaces.");
  const scopes = parseScopes(payload.scope ?? payload.scp);
  if (scopes.some((s) => PERSON_SCOPES.includes(s))) {
    if (!UUID.test(sub))
      return new UnauthorizedError("A listener or creator token's sub claim must be the person's UUID.");
    return { sub: sub.toLowerCase(), scopes };
  }
  return { sub, scopes };
}
