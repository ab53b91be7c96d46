import http from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { createClickHouse } from '../lib/clients/clickhouse';
import { createKafka } from '../lib/clients/kafka';
import { createPostgresPool } from '../lib/clients/postgres';
import { config } from '../lib/config';
import { childLogger } from '../lib/logger';
import { PlayTickSink } from './sink/sink';
import { SuppressionList } from './sink/suppressions';

/** The play-tick sink process: Kafka `play-ticks` → ClickHouse `play_ticks`, metrics on its own port. */
const log = childLogger('sink');

async function main(): Promise<void> {
  const cfg = config();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'cadenza_sink_' });
  const pool = await createPostgresPool(cfg.postgres, 2);
  const suppressions = new SuppressionList(pool);
  await suppressions.start();
  const clickhouse = createClickHouse(cfg.clickhouse);
  const sink = new PlayTickSink(
    createKafka(cfg.kafka, 'cadenza-sink'),
    clickhouse,
    suppressions,
    log,
    { ...cfg.sink, topics: cfg.kafka.topics },
    registry,
  );
  const server = http.createServer((req, res) => {
    if (req.url === '/metrics') {
      void registry
        .metrics()
        .then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body));
      return;
    }
    res
      .writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'application/json' })
      .end('{"status":"ok"}');
  });
  server.listen(cfg.sink.healthPort, '127.0.0.1');
  await sink.start();
  log.info({ groupId: cfg.sink.groupId }, 'sink consuming');
  const stop = async () => {
    log.info('sink stopping: finishing the batch in hand, committing, leaving the group');
    await sink.stop();
    await suppressions.stop();
    server.close();
    await Promise.allSettled([clickhouse.close(), pool.end()]);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

main().catch((err: unknown) => {
  log.fatal({ err }, 'sink failed');
  process.exit(1);
});
