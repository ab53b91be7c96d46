import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../lib/config';
import { testApp, withTempIssuer } from '../helpers/api';

/**
 * Operator, finance and compliance actions answer for themselves: every route that changes something and
 * that one of those scopes may call declares the audit entry it writes (api/plugins/audit.ts).
 */
describe('audited routes', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await testApp(withTempIssuer(loadConfig({})));
  });
  afterAll(() => app.close());

  it('every state-changing route open to operator, finance or compliance declares its audit action', () => {
    const privileged = ['operator', 'finance', 'compliance'];
    const actions = app.routeTable.filter(
      (r) => r.method !== 'GET' && !r.public && r.scopes.some((s) => privileged.includes(s)),
    );
    expect(actions.length).toBeGreaterThan(0);
    for (const r of actions)
      expect({ route: `${r.method} ${r.url}`, audit: r.audit }).toEqual({
        route: `${r.method} ${r.url}`,
        audit: expect.stringMatching(/^[a-z_]+(\.[a-z_]+)+$/),
      });
  });

  it('names each action once', () => {
    const actions = app.routeTable.map((r) => r.audit).filter(Boolean);
    expect(new Set(actions).size).toBe(actions.length);
  });
});
