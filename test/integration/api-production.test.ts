import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { mintDevToken } from '../../api/auth/dev-issuer';
import { loadConfig } from '../../lib/config';
import { migratePostgres } from '../../sql/migrate/postgres';
import { scratchDatabases } from '../../stack/scratch';
import { testConfig } from '../helpers/env';

/**
 * The API process (api/main.ts) in production mode, both ways: without an external issuer it refuses to
 * start and names what is missing, creating no key; with one (a JWKS served here by a tiny HTTP server)
 * it accepts that issuer's tokens only, serves no JWKS of its own, and says so at start-up.
 */
const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

interface Api {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startApi(env: Record<string, string>): Api {
  let output = '';
  const child = spawn(TSX, ['api/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', CADENZA_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function waitForHealth(url: string, api: Api): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if (api.child.exitCode !== null) throw new Error(`the API exited:\n${api.output()}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the API did not start:\n${api.output()}`);
}

describe('CADENZA_ENV=production', () => {
  let db: Awaited<ReturnType<typeof scratchDatabases>>;
  let base: Record<string, string>;
  const running: Api[] = [];

  beforeAll(async () => {
    db = await scratchDatabases(testConfig(), { clickhouse: false });
    await migratePostgres(db.config.postgres);
    base = {
      CADENZA_PG_DATABASE: db.config.postgres.database,
      CADENZA_TEMPORAL_NAMESPACE: db.config.temporal.namespace,
    };
  }, 60_000);
  afterAll(async () => {
    for (const api of running) if (api.child.exitCode === null) api.child.kill('SIGTERM');
    await Promise.all(running.map((a) => a.exited));
    await db?.drop();
  });

  it('refuses to start without an external issuer, naming the variables, and creates no key', async () => {
    const production: Record<string, string>[] = [{ CADENZA_ENV: 'production' }, { NODE_ENV: 'production' }];
    for (const env of production) {
      const keys = mkdtempSync(path.join(tmpdir(), 'cadenza-prod-keys-'));
      const api = startApi({
        ...base,
        ...env,
        CADENZA_API_PORT: String(await freePort()),
        CADENZA_DEV_ISSUER_DIR: keys,
        CADENZA_AUTH_ISSUER: 'https://issuer.example', // one of three is not enough
      });
      running.push(api);
      expect(await api.exited).not.toBe(0);
      const out = api.output();
      expect(out).toMatch(/CADENZA_AUTH_JWKS_URL is not set/);
      expect(out).toMatch(/CADENZA_AUTH_AUDIENCE is not set/);
      expect(out).not.toMatch(/CADENZA_AUTH_ISSUER is not set/);
      expect(readdirSync(keys)).toEqual([]);
    }
  }, 60_000);

  it('starts with an external issuer, accepts its tokens only, and serves no development JWKS', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'prod-1', alg: 'ES256', use: 'sig' };
    let jwksUp = false; // the issuer is unreachable when the API meets its first token
    const jwks = http.createServer((req, res) => {
      if (!jwksUp) return void res.socket?.destroy();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as net.AddressInfo).port}/jwks.json`;
    const issuer = 'https://login.example.test/';
    const audience = 'https://api.cadenza.example';
    const sign = (key: CryptoKey, claims: Record<string, unknown>) =>
      new SignJWT({ scope: 'operator', ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: 'prod-1', typ: 'at+jwt' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject('ops-client')
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(key);

    const keys = mkdtempSync(path.join(tmpdir(), 'cadenza-prod-keys-'));
    const port = await freePort();
    const api = startApi({
      ...base,
      CADENZA_ENV: 'production',
      CADENZA_API_PORT: String(port),
      CADENZA_DEV_ISSUER_DIR: keys,
      CADENZA_AUTH_JWKS_URL: jwksUrl,
      CADENZA_AUTH_ISSUER: issuer,
      CADENZA_AUTH_AUDIENCE: audience,
    });
    running.push(api);
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitForHealth(url, api);
      expect(api.output()).toMatch(/auth: tokens of the external issuer only/);
      expect(api.output()).not.toMatch(/DEVELOPMENT issuer/);

      const call = (token: string) =>
        fetch(`${url}/v1/workflows?pageSize=1`, { headers: { authorization: `Bearer ${token}` } });
      // The issuer's keys cannot be fetched: the token cannot be checked, which is ours (503), not 401.
      const token = await sign(privateKey, {});
      const unreachable = await call(token);
      expect(unreachable.status).toBe(503);
      expect(unreachable.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(unreachable.headers.get('retry-after')).not.toBeNull();
      jwksUp = true;
      expect((await call(token)).status).toBe(200);
      // The development issuer's token (minted in another process's key folder) is not trusted here.
      const devCfg = loadConfig({ CADENZA_DEV_ISSUER_DIR: mkdtempSync(path.join(tmpdir(), 'cadenza-dev-')) });
      const dev = await mintDevToken(devCfg.auth, { sub: 'ops', scopes: ['operator'] });
      expect((await call(dev)).status).toBe(401);
      expect((await fetch(`${url}/.well-known/jwks.json`)).status).toBe(404);
      expect(readdirSync(keys)).toEqual([]);
    } finally {
      api.child.kill('SIGTERM');
      await api.exited;
      await new Promise((r) => jwks.close(r));
    }
  }, 90_000);
});
