import { parseArgs } from 'node:util';
import { sql } from 'slonik';
import { z } from 'zod';
import { mintDevToken } from '../api/auth/dev-issuer';
import { createPostgresPool } from '../lib/clients/postgres';
import { config } from '../lib/config';

/**
 * npm run demo:subscriptions [-- --if-empty]: three subscriptions on the `demo` plan (3-minute periods,
 * 1-minute trial, 2-minute grace) through the running API, to watch whole lifecycles in the Temporal
 * Web UI in real time: one renews every period; one declines into grace and, unless you give it a
 * working card (the command is printed), is downgraded; one has an expired card and is downgraded.
 */
const cfg = config();
const api = `http://${cfg.api.host}:${cfg.api.port}`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { 'if-empty': { type: 'boolean', default: false }, recover: { type: 'string' } },
  });
  const pool = await createPostgresPool(cfg.postgres, 1);
  const token = await mintDevToken(cfg.auth, { sub: 'demo-script', scopes: ['service'], ttlSeconds: 600 });
  const call = async (method: string, path: string, body: object) => {
    const res = await fetch(`${api}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, string>;
    if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(json)}`);
    return json;
  };
  const method = async (userId: string, testMethod: string) =>
    (await call('POST', '/v1/payment-methods', { userId, testMethod })).paymentMethodId as string;
  try {
    if (values.recover) {
      // A person fixes their card: a working method, and the overdue charge is retried at once.
      const id = values.recover;
      const userId = await pool.oneFirst(sql.type(z.object({ user_id: z.string() }))`
        SELECT user_id FROM subscriptions WHERE subscription_id = ${id}`);
      const view = await call('PUT', `/v1/subscriptions/${id}/payment-method`, {
        paymentMethodId: await method(userId, 'test_ok'),
      });
      process.stdout.write(`subscription ${id}: ${view.status}; a working card is on file\n`);
      return;
    }
    const demos = await pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM subscriptions WHERE plan IN ('demo', 'demo-plus')`);
    if (values['if-empty'] && demos > 0) {
      process.stdout.write(`demo subscriptions: ${demos} already there\n`);
      return;
    }
    const users = await pool.manyFirst(sql.type(z.object({ user_id: z.string() }))`
      SELECT user_id FROM users u WHERE erased_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = u.user_id)
      ORDER BY created_at, user_id LIMIT 3`);
    if (users.length < 3) throw new Error('no users without subscriptions: run npm run seed first');
    const subscribe = async (userId: string, paymentMethodId: string, trialDays?: number) =>
      (await call('POST', '/v1/subscriptions', { userId, plan: 'demo', paymentMethodId, trialDays }))
        .subscriptionId as string;

    const [renews, declines, expired] = users as [string, string, string];
    const a = await subscribe(renews, await method(renews, 'test_ok'));
    const b = await subscribe(declines, await method(declines, 'test_ok'), 0);
    await call('PUT', `/v1/subscriptions/${b}/payment-method`, {
      paymentMethodId: await method(declines, 'test_insufficient_funds'),
    });
    const c = await subscribe(expired, await method(expired, 'test_expired_card'));
    const ui = (id: string) =>
      `${cfg.temporal.uiUrl}/namespaces/${cfg.temporal.namespace}/workflows/subscription-${id}`;
    process.stdout.write(
      [
        'demo subscriptions (plan demo: 1-minute trial, 3-minute periods, 2-minute grace):',
        `  renews every period:        ${ui(a)}`,
        `  declines at 3 min, grace:   ${ui(b)}`,
        `    recover it before the grace runs out:`,
        `    npm run demo:subscriptions -- --recover ${b}  (or PUT /v1/subscriptions/${b}/payment-method)`,
        `  expired card, downgraded:   ${ui(c)}`,
        '',
      ].join('\n'),
    );
  } finally {
    await pool.end();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
