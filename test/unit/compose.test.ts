import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { apiConfigProblems, configVariables, loadConfig } from '../../lib/config';
import { SEARCH_ATTRIBUTE_TYPES } from '../../workflows/search-attributes';

/** The compose file cannot run here (no Docker engine): it is checked statically against the config. */
interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
}
const compose = parse(readFileSync(path.join(__dirname, '../../temporal/docker-compose.yml'), 'utf8'), {
  merge: true,
}) as {
  services: Record<string, Service>;
};
const defaults = loadConfig({});
const hostPorts = (s: Service | undefined) => (s?.ports ?? []).map((p) => Number(p.split(':')[0]));

describe('temporal/docker-compose.yml', () => {
  it('names every service of the stack and the Cadenza processes', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      [
        'postgres',
        'temporal-db',
        'temporal',
        'temporal-setup',
        'temporal-ui',
        'kafka',
        'clickhouse',
        'opensearch',
        'minio',
        'payments-sandbox',
        'cadenza-migrate',
        'cadenza-worker',
        'cadenza-sink',
        'cadenza-api',
      ].sort(),
    );
    for (const [name, s] of Object.entries(compose.services))
      expect([name, Boolean(s.image || s.build)]).toEqual([name, true]);
  });

  it('runs PostgreSQL 16, OpenSearch 2.19 and Kafka 4 in KRaft mode', () => {
    expect(readFileSync(path.join(__dirname, '../../temporal/postgres/Dockerfile'), 'utf8')).toMatch(
      /FROM postgres:16[\s\S]*partman/,
    );
    expect(compose.services.opensearch?.image).toMatch(/opensearch:2\.19/);
    expect(compose.services.opensearch?.environment?.DISABLE_SECURITY_PLUGIN).toBe('true');
    expect(compose.services.kafka?.image).toMatch(/kafka:4\./);
    expect(compose.services.kafka?.environment?.KAFKA_PROCESS_ROLES).toBe('broker,controller');
  });

  it('gives the Cadenza processes only variables the config knows, and a config that loads', () => {
    for (const name of [
      'payments-sandbox',
      'cadenza-migrate',
      'cadenza-worker',
      'cadenza-sink',
      'cadenza-api',
    ]) {
      const env = compose.services[name]?.environment ?? {};
      const unknown = Object.keys(env).filter((k) => !(configVariables as string[]).includes(k));
      expect({ name, unknown }).toEqual({ name, unknown: [] });
      const cfg = loadConfig(env);
      expect(cfg.postgres.host).toBe('postgres');
      expect(cfg.temporal.address).toBe('temporal:7233');
      expect(Object.keys(compose.services)).toEqual(
        expect.arrayContaining([cfg.clickhouse.host, cfg.opensearch.host, cfg.minio.endPoint]),
      );
    }
  });

  it('points the worker at the payments sandbox service, which runs the sandbox entry', () => {
    const worker = loadConfig(compose.services['cadenza-worker']?.environment ?? {});
    expect(worker.payments.provider).toBe('sandbox');
    expect(worker.payments.sandbox.host).toBe('payments-sandbox');
    const sandbox = compose.services['payments-sandbox'];
    expect(sandbox?.command).toEqual(['npx', 'tsx', 'sandbox/payments/main.ts']);
    expect(loadConfig(sandbox?.environment ?? {}).payments.sandbox.port).toBe(worker.payments.sandbox.port);
  });

  it('registers the same search attributes as the native stack, from the one list', () => {
    const setup = (compose.services['temporal-setup']?.command ?? []).join(' ');
    const named = [...setup.matchAll(/--name (\w+) --type (\w+)/g)].map(([, n, t]) => [n, t]);
    expect(Object.fromEntries(named)).toEqual(SEARCH_ATTRIBUTE_TYPES);
  });

  it('publishes each service on the same host port as the native stack', () => {
    const s = compose.services;
    expect(hostPorts(s.postgres)).toContain(defaults.postgres.port);
    expect(hostPorts(s.temporal)).toContain(defaults.temporal.port);
    expect(hostPorts(s['temporal-ui'])).toContain(defaults.temporal.uiPort);
    expect(hostPorts(s.kafka)).toContain(defaults.kafka.port);
    expect(hostPorts(s.clickhouse)).toEqual(
      expect.arrayContaining([defaults.clickhouse.httpPort, defaults.clickhouse.tcpPort]),
    );
    expect(hostPorts(s.opensearch)).toContain(defaults.opensearch.port);
    expect(hostPorts(s.minio)).toEqual(
      expect.arrayContaining([defaults.minio.port, defaults.minio.consolePort]),
    );
    expect(hostPorts(s['cadenza-api'])).toContain(defaults.api.port);
    expect(hostPorts(s['payments-sandbox'])).toContain(defaults.payments.sandbox.port);
    expect(s.minio?.environment?.MINIO_ROOT_USER).toBe(defaults.minio.accessKey);
    expect(s.minio?.environment?.MINIO_ROOT_PASSWORD).toBe(defaults.minio.secretKey);
  });

  it('builds a production image whose API refuses the development issuer; the local stack says development', () => {
    const dockerfile = readFileSync(path.join(__dirname, '../../Dockerfile'), 'utf8');
    const imageEnv = Object.fromEntries(
      [...dockerfile.matchAll(/^ENV (.+)$/gm)].flatMap(([, line]) =>
        (line as string).split(/\s+/).map((kv) => kv.split('=') as [string, string]),
      ),
    );
    expect(imageEnv).toMatchObject({ NODE_ENV: 'production', CADENZA_ENV: 'production' });
    const imageAlone = loadConfig(imageEnv);
    expect(imageAlone.auth.production).toBe(true);
    expect(apiConfigProblems(imageAlone)).toHaveLength(3);
    const api = compose.services['cadenza-api']?.environment ?? {};
    expect(api.CADENZA_ENV).toBe('development');
    expect(apiConfigProblems(loadConfig({ ...imageEnv, ...api }))).toEqual([]);
  });
});
