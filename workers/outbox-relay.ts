import http from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { NotificationClient } from '../lib/clients/notifications';
import { createPostgresPool } from '../lib/clients/postgres';
import { config } from '../lib/config';
import { childLogger } from '../lib/logger';
import { OutboxRelay } from './outbox/relay';

/**
 * The outbox relay process (workers/outbox/relay.ts): outbox_messages → the notification provider, at least
 * once with an idempotency key per message. Supervised beside the worker; several may run. SIGTERM finishes
 * the batch in hand and exits; kill -9 leaves leased messages that come back when their lease ends.
 * Health and metrics on CADENZA_RELAY_HEALTH_PORT (/healthz, /metrics).
 */
const log = childLogger('outbox-relay');

async function main(): Promise<void> {
  const cfg = config();
  const pool = await createPostgresPool(cfg.postgres, cfg.outbox.concurrency + 2);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'cadenza_relay_' });
  const relay = new OutboxRelay(
    pool,
    new NotificationClient({ url: cfg.notifications.url, timeoutMs: cfg.notifications.timeoutMs }),
    cfg.outbox,
    registry,
    log,
  );
  const health = http.createServer((req, res) => {
    if (req.url === '/metrics') {
      void registry
        .metrics()
        .then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body));
      return;
    }
    res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'ok' }));
  });
  health.listen(cfg.outbox.healthPort, '127.0.0.1');
  const running = relay.run();
  const stop = async () => {
    log.info('outbox relay stopping');
    relay.stop();
    await running;
    health.close();
    await pool.end();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  log.info({ provider: cfg.notifications.url, health: cfg.outbox.healthPort }, 'outbox relay running');
}

main().catch((err: unknown) => {
  log.fatal({ err }, 'outbox relay failed');
  process.exit(1);
});
