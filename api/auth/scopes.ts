/** One scope per role (DESIGN §6). A token's `scope` claim lists them, space-separated (OAuth 2.0). */
export const SCOPES = ['listener', 'creator', 'finance', 'compliance', 'operator', 'service'] as const;
export type Scope = (typeof SCOPES)[number];

export interface Principal {
  /** The token's subject: a user ID for listeners and creators, a client ID for services. */
  sub: string;
  scopes: Scope[];
}

export function parseScopes(claim: unknown): Scope[] {
  const raw = Array.isArray(claim) ? claim : typeof claim === 'string' ? claim.split(' ') : [];
  return raw.filter((s): s is Scope => (SCOPES as readonly string[]).includes(s as string));
}
