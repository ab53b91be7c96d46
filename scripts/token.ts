import { parseArgs } from 'node:util';
import { mintDevToken } from '../api/auth/dev-issuer';
import { parseScopes, SCOPES } from '../api/auth/scopes';
import { config } from '../lib/config';

/** npm run token -- --sub <id> --scopes a,b [--ttl seconds]: a bearer token from the development issuer. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sub: { type: 'string' },
      scopes: { type: 'string', default: '' },
      ttl: { type: 'string', default: '3600' },
    },
  });
  const cfg = config();
  if (cfg.auth.jwksUrl)
    throw new Error('CADENZA_AUTH_JWKS_URL is set: tokens come from that issuer, not the development one.');
  if (!values.sub)
    throw new Error('usage: npm run token -- --sub <id> --scopes listener,operator [--ttl 3600]');
  const asked = values.scopes.split(',').filter(Boolean);
  const scopes = parseScopes(asked);
  const unknown = asked.filter((s) => !scopes.includes(s as never));
  if (unknown.length) throw new Error(`unknown scope(s) ${unknown.join(', ')}; known: ${SCOPES.join(', ')}`);
  process.stdout.write(
    `${await mintDevToken(cfg.auth, { sub: values.sub, scopes, ttlSeconds: Number(values.ttl) })}\n`,
  );
}

main().catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
});
