import { config } from '../lib/config';

/** What `npm run up` prints at the end: where everything is. */
const c = config();
const lines = [
  ['Cadenza API', `http://${c.api.host}:${c.api.port}  (OpenAPI UI: /docs, health: /readyz)`],
  ['Temporal Web UI', c.temporal.uiUrl],
  ['Temporal frontend', c.temporal.address],
  [
    'PostgreSQL',
    `postgresql://${c.postgres.user}@${c.postgres.host}:${c.postgres.port}/${c.postgres.database}`,
  ],
  ['ClickHouse', c.clickhouse.url],
  ['OpenSearch', c.opensearch.url],
  ['MinIO console', `http://${c.minio.endPoint}:${c.minio.consolePort}  (user ${c.minio.accessKey})`],
  ['Kafka', c.kafka.brokers.join(',')],
  ['Worker metrics', `http://127.0.0.1:${c.worker.metricsPort}/metrics`],
  ['Ops metrics', `http://127.0.0.1:${c.worker.healthPort}/metrics  (jobs, backups, outbox, deadlines)`],
  ['Notifications', `${c.notifications.url}/v1/notifications/summary  (the outbox relay's sandbox provider)`],
];
process.stdout.write(`\nCadenza is up.\n${lines.map(([k, v]) => `  ${k?.padEnd(18)} ${v}`).join('\n')}\n`);
process.stdout.write(
  '\nA token for the API:  npm run -s token -- --sub me --scopes operator\nSchedules:            temporal schedule list (runbook: docs/runbook.md)\nStop everything:      npm run stack -- down\n',
);
