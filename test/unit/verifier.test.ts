import { loadConfig } from '../../lib/config';
import { createVerifier } from '../../api/auth/verifier';
import { tokenFor, withTempIssuer } from '../helpers/api';

/** The verifier remembers a verified token by its text, never past its expiry and never for an altered one. */
describe('token verifier', () => {
  const cfg = withTempIssuer(loadConfig({ CADENZA_TEMPORAL_ADDRESS: '127.0.0.1:1' }));
  afterEach(() => jest.useRealTimers());

  it('accepts a token again after verifying it once, and refuses it once it has expired', async () => {
    const start = Date.now();
    jest.useFakeTimers({ now: start, doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const verify = await createVerifier(cfg.auth);
    const token = await tokenFor(cfg, 'svc-1', ['service'], 20);
    expect(await verify(`Bearer ${token}`)).toEqual({ sub: 'svc-1', scopes: ['service'] });
    const again = await verify(`Bearer ${token}`);
    expect(again).toEqual({ sub: 'svc-1', scopes: ['service'] });
    again.scopes.push('operator'); // a caller's change does not reach the next request
    expect((await verify(`Bearer ${token}`)).scopes).toEqual(['service']);
    // Past exp and the clock tolerance, but within the minute a verified token is remembered for.
    jest.setSystemTime(start + (20 + cfg.auth.clockToleranceSeconds + 1) * 1000);
    await expect(verify(`Bearer ${token}`)).rejects.toThrow('The token has expired.');
  });

  it('refuses a remembered token with one character of its signature changed', async () => {
    const verify = await createVerifier(cfg.auth);
    const token = await tokenFor(cfg, 'svc-2', ['service'], 60);
    await verify(`Bearer ${token}`);
    const last = token.at(-2) === 'A' ? 'B' : 'A';
    const altered = `${token.slice(0, -2)}${last}${token.at(-1)}`;
    await expect(verify(`Bearer ${altered}`)).rejects.toThrow('The token could not be verified.');
  });
});
