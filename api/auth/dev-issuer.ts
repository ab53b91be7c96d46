import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import type { Config } from '../../lib/config';
import type { Scope } from './scopes';

/**
 * The development issuer: a local ES256 signing key and its JWKS, so the README's commands work
 * without an identity server. Production sets CADENZA_AUTH_JWKS_URL to a real OIDC issuer instead.
 */

const ALG = 'ES256';

interface KeyFiles {
  privateJwk: JWK;
  publicJwk: JWK;
}

async function loadOrCreate(dir: string): Promise<KeyFiles> {
  const file = path.join(dir, 'signing-key.jwk.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as KeyFiles;
  const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const keys: KeyFiles = {
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: ALG, use: 'sig' },
    publicJwk: { ...publicJwk, kid, alg: ALG, use: 'sig' },
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, JSON.stringify(keys), { mode: 0o600, flag: 'wx' });
  return keys;
}

const cache = new Map<string, Promise<KeyFiles>>();
function keys(auth: Config['auth']): Promise<KeyFiles> {
  // Production trusts only an external issuer: no development key is created, read or served there.
  if (auth.production) throw new Error('CADENZA_ENV=production: the development issuer is disabled');
  const dir = auth.devIssuerDir;
  let k = cache.get(dir);
  if (!k) {
    k = loadOrCreate(dir).catch((err: NodeJS.ErrnoException) => {
      // Two processes creating the key at once: the second reads what the first wrote.
      if (err.code === 'EEXIST') return loadOrCreate(dir);
      throw err;
    });
    cache.set(dir, k);
  }
  return k;
}

export async function devJwks(auth: Config['auth']): Promise<{ keys: JWK[] }> {
  return { keys: [(await keys(auth)).publicJwk] };
}

export interface MintOptions {
  sub: string;
  scopes: Scope[];
  /** Lifetime in seconds; negative values mint an already expired token (for tests). */
  ttlSeconds?: number;
}

export async function mintDevToken(auth: Config['auth'], opts: MintOptions): Promise<string> {
  const { privateJwk } = await keys(auth);
  const now = Math.floor(Date.now() / 1000);
  const ttl = opts.ttlSeconds ?? 3600;
  return new SignJWT({ scope: opts.scopes.join(' ') })
    .setProtectedHeader({ alg: ALG, kid: privateJwk.kid, typ: 'at+jwt' })
    .setIssuer(auth.issuer)
    .setAudience(auth.audience)
    .setSubject(opts.sub)
    .setIssuedAt(Math.min(now, now + ttl - 60))
    .setExpirationTime(now + ttl)
    .sign(await importJWK(privateJwk, ALG));
}

/** Signs any claims and header with the development key: tests forge the odd tokens a real issuer never makes. */
export async function signWithDevKey(
  auth: Config['auth'],
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<string> {
  const { privateJwk } = await keys(auth);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: ALG, kid: privateJwk.kid, ...header })
    .sign(await importJWK(privateJwk, ALG));
}
