import { apiConfigProblems, ConfigError, loadConfig } from '../../lib/config';

describe('config', () => {
  it('defaults to the native stack on loopback, ClickHouse and MinIO on different ports', () => {
    const cfg = loadConfig({});
    expect(cfg.postgres.port).toBe(55432);
    expect(cfg.temporal.address).toBe('127.0.0.1:7233');
    expect(cfg.temporal.uiUrl).toBe('http://127.0.0.1:8233');
    expect(cfg.minio.port).toBe(9000);
    expect(cfg.clickhouse.tcpPort).not.toBe(cfg.minio.port);
    expect(cfg.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(cfg.worker.taskQueues).toEqual([
      'catalog',
      'catalog-media',
      'billing',
      'royalties',
      'compliance',
      'ops',
    ]);
  });

  it('reads every value from the environment, typed', () => {
    const cfg = loadConfig({
      CADENZA_PG_PORT: '6543',
      CADENZA_KAFKA_BROKERS: 'a:1, b:2',
      CADENZA_MINIO_USE_SSL: 'true',
      CADENZA_WORKER_TASK_QUEUES: 'billing',
    });
    expect(cfg.postgres.port).toBe(6543);
    expect(cfg.kafka.brokers).toEqual(['a:1', 'b:2']);
    expect(cfg.minio.useSSL).toBe(true);
    expect(cfg.worker.taskQueues).toEqual(['billing']);
  });

  it('names every bad variable in one error', () => {
    let error: unknown;
    try {
      loadConfig({
        CADENZA_PG_PORT: 'not-a-port',
        CADENZA_CLICKHOUSE_URL: 'nope',
        CADENZA_WORKER_TASK_QUEUES: 'billing,shipping',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('CADENZA_PG_PORT="not-a-port"');
    expect(message).toContain('CADENZA_CLICKHOUSE_URL="nope"');
    expect(message).toContain('CADENZA_WORKER_TASK_QUEUES');
    expect((error as ConfigError).problems).toHaveLength(3);
  });

  it('refuses a worker without a workflow cache, which would drop local activities, and reads the sticky timeout', () => {
    expect(() => loadConfig({ CADENZA_WORKER_MAX_CACHED_WORKFLOWS: '0' })).toThrow(
      /CADENZA_WORKER_MAX_CACHED_WORKFLOWS.*local activities need a cache/,
    );
    expect(loadConfig({ CADENZA_WORKER_STICKY_TIMEOUT: '2m' }).worker.stickyTimeout).toBe('2m');
    expect(() => loadConfig({ CADENZA_WORKER_STICKY_TIMEOUT: 'soon' })).toThrow(
      /CADENZA_WORKER_STICKY_TIMEOUT/,
    );
  });

  it('refuses more workflow-task polls than task slots, naming both variables', () => {
    const cfg = loadConfig({
      CADENZA_WORKER_MAX_WORKFLOW_TASKS: '8',
      CADENZA_WORKER_WORKFLOW_TASK_POLLS: '4',
    });
    expect(cfg.worker).toMatchObject({ maxWorkflowTasks: 8, workflowTaskPolls: 4 });
    expect(() =>
      loadConfig({ CADENZA_WORKER_MAX_WORKFLOW_TASKS: '8', CADENZA_WORKER_WORKFLOW_TASK_POLLS: '9' }),
    ).toThrow(/CADENZA_WORKER_WORKFLOW_TASK_POLLS=9: at most CADENZA_WORKER_MAX_WORKFLOW_TASKS \(8\)/);
    expect(() => loadConfig({ CADENZA_WORKER_WORKFLOW_TASK_POLLS: '1' })).toThrow(
      /CADENZA_WORKER_WORKFLOW_TASK_POLLS/,
    );
  });

  it('rejects a port out of range', () => {
    expect(() => loadConfig({ CADENZA_API_PORT: '70000' })).toThrow(/CADENZA_API_PORT/);
  });

  it('is production when NODE_ENV says so and CADENZA_ENV does not, and then needs the whole issuer', () => {
    expect(loadConfig({}).auth.production).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production' }).auth.production).toBe(true);
    expect(loadConfig({ NODE_ENV: 'production', CADENZA_ENV: 'development' }).auth.production).toBe(false);
    const partial = loadConfig({
      CADENZA_ENV: 'production',
      CADENZA_AUTH_JWKS_URL: 'https://idp.example/jwks',
    });
    expect(apiConfigProblems(partial).join('\n')).toMatch(/CADENZA_AUTH_ISSUER[\s\S]*CADENZA_AUTH_AUDIENCE/);
    const whole = loadConfig({
      CADENZA_ENV: 'production',
      CADENZA_AUTH_JWKS_URL: 'https://idp.example/jwks',
      CADENZA_AUTH_ISSUER: 'https://idp.example/',
      CADENZA_AUTH_AUDIENCE: 'cadenza',
    });
    expect(apiConfigProblems(whole)).toEqual([]);
    // Development keeps its one-command defaults.
    expect(loadConfig({}).auth).toMatchObject({ issuer: 'cadenza-dev-issuer', audience: 'cadenza-api' });
  });

  it('reads the API limits: trust proxy forms, headers timeout within the request timeout, token types', () => {
    expect(loadConfig({}).api.trustProxy).toBe(false);
    expect(loadConfig({ CADENZA_API_TRUST_PROXY: '10.0.0.0/8, 192.168.1.1' }).api.trustProxy).toEqual([
      '10.0.0.0/8',
      '192.168.1.1',
    ]);
    const hops = loadConfig({ CADENZA_API_TRUST_PROXY: '2' }).api.trustProxy as (
      a: string,
      i: number,
    ) => boolean;
    expect([hops('x', 0), hops('x', 1), hops('x', 2)]).toEqual([true, true, false]);
    expect(() => loadConfig({ CADENZA_API_TRUST_PROXY: 'everyone' })).toThrow(/CADENZA_API_TRUST_PROXY/);
    const api = loadConfig({
      CADENZA_API_REQUEST_TIMEOUT_MS: '5000',
      CADENZA_API_HEADERS_TIMEOUT_MS: '20000',
    }).api;
    expect(api.headersTimeoutMs).toBe(5000);
    expect(loadConfig({ CADENZA_AUTH_TOKEN_TYPES: 'application/at+JWT' }).auth.tokenTypes).toEqual([
      'at+jwt',
    ]);
  });
});
