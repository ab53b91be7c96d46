import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { PlayTickProducer } from '../../api/lib/play-tick-producer';
import { PlanCatalog } from '../../domain/billing/plans';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { createPaymentProvider } from '../../lib/clients/payments';
import { createPostgresPool } from '../../lib/clients/postgres';
import type { Config } from '../../lib/config';
import { stackContext } from '../../stack/context';
import { CONTRACT_NAMESPACE } from '../../stack/services/temporal';
import { scratchSearchAndObjects, scratchTickPipeline, type TickPipeline } from '../../stack/scratch';
import { createMinio, createMinioSigner } from '../../lib/clients/minio';
import { createOpenSearch } from '../../lib/clients/opensearch';
import { provisionSchemathesis, schemathesisBin } from '../../stack/services/schemathesis';
import { testApp, tokenFor, withTempIssuer } from '../helpers/api';
import { testConfig } from '../helpers/env';

/**
 * The contract fuzzer: Schemathesis reads the API's own OpenAPI document (/docs/json) and throws
 * generated requests at every operation of the API on a real port, over real stores (scratch PostgreSQL
 * and ClickHouse, a Kafka topic of its own, Temporal, the payments sandbox), with every check it has:
 * no 5xx, every status and content type and body as documented, invalid input refused, valid input
 * accepted, 405 with Allow for other methods, 401 without a token. Bounded: a fixed number of examples
 * per operation and no stateful phase (it would start real workflows by the hundred). Zero failures.
 */
const EXAMPLES_PER_OPERATION = 100;

/** Runs schemathesis; resolves with its exit code and output. */
function schemathesis(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    // In a folder of its own: it keeps a cache of crashes (.schemathesis/) where it runs.
    const child = spawn(bin, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

describe('the OpenAPI document is the truth (Schemathesis)', () => {
  let pipeline: TickPipeline;
  let objects: Awaited<ReturnType<typeof scratchSearchAndObjects>>;
  let cfg: Config;
  let pool: DatabasePool;
  let ch: ClickHouseClient;
  let connection: Connection;
  let temporal: Client;
  let publisher: PlayTickProducer;
  let app: FastifyInstance;
  let bin: string;
  /** Every run the API started for the fuzzer (pings, reconciliations, settlements, GDPR requests, …). */
  const startedRuns: { workflowId: string; runId: string }[] = [];

  beforeAll(async () => {
    const ctx = stackContext();
    // Installed by `npm run stack -- up` (stack/services/schemathesis.ts); provisioned here too if missing.
    await provisionSchemathesis(ctx);
    bin = schemathesisBin(ctx);
    pipeline = await scratchTickPipeline(testConfig(), 'contract', 1);
    objects = await scratchSearchAndObjects(pipeline.config);
    // The fuzzer's requests without a token would otherwise spend its address's budget in seconds.
    cfg = withTempIssuer({
      ...objects.config,
      api: { ...objects.config.api, authFailuresPerMinute: 1_000_000 },
    });
    // The runs the API starts for the fuzzer live in a namespace no test worker polls (stack/services/temporal.ts).
    cfg = { ...cfg, temporal: { ...cfg.temporal, namespace: CONTRACT_NAMESPACE } };
    pool = await createPostgresPool(cfg.postgres, 4);
    ch = createClickHouse(cfg.clickhouse);
    connection = await Connection.connect({ address: cfg.temporal.address });
    temporal = new Client({ connection, namespace: cfg.temporal.namespace });
    // The API starts every run through this client: note each, so the test can end exactly those.
    const start = temporal.workflow.start.bind(temporal.workflow);
    temporal.workflow.start = (async (...args: Parameters<typeof start>) => {
      const handle = await start(...args);
      startedRuns.push({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId });
      return handle;
    }) as typeof start;
    publisher = new PlayTickProducer(pipeline.kafka, pipeline.topics.ticks, 3000);
    app = await testApp(cfg, {
      pool,
      clickhouse: ch,
      temporal,
      publisher,
      payments: { provider: createPaymentProvider(cfg.payments), plans: PlanCatalog.builtIn() },
      // GDPR links and royalty statements: the scratch buckets (the config's bucket prefix names them).
      minio: createMinio(cfg.minio),
      catalog: {
        minio: createMinio(cfg.minio),
        signer: createMinioSigner(cfg.minio),
        opensearch: createOpenSearch(cfg.opensearch),
      },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
  }, 300_000);

  afterAll(async () => {
    await app?.close();
    // The runs the fuzzer started (no worker serves them here) are terminated, not left running in the
    // namespace other tests share (their workers would take them up).
    if (temporal)
      for (const run of startedRuns)
        await temporal.workflow
          .getHandle(run.workflowId, run.runId)
          .terminate('contract test over')
          .catch(() => undefined);
    await publisher?.close();
    await connection?.close();
    await ch?.close();
    await pool?.end();
    await pipeline?.drop();
    await objects?.drop();
  });

  it('finds no failure in any operation, with every check', async () => {
    const { port } = app.server.address() as AddressInfo;
    const base = `http://127.0.0.1:${port}`;
    const operator = await tokenFor(cfg, 'contract-fuzzer', ['operator', 'finance', 'compliance', 'service']);
    const listener = await tokenFor(cfg, randomUUID(), ['listener']);
    // Creators act as an artist of the catalog: their token names one.
    const artist = await pool.oneFirst(sql.type(z.object({ artist_id: z.string() }))`
      INSERT INTO artists (name) VALUES ('Contract Fuzzer') RETURNING artist_id::text`);
    const creator = await tokenFor(cfg, artist, ['creator']);
    const dir = mkdtempSync(path.join(tmpdir(), 'cadenza-schemathesis-'));
    const config = path.join(dir, 'schemathesis.toml');
    // Routes that act for a user are fuzzed as a listener: a service or operator token must name the user
    // (userId), a rule JSON Schema cannot tie to the token. The rules a schema cannot state at all are named
    // where they apply, as the only 400s (and 422s) expected of valid-looking input. An operation block's
    // include-* keys each select on their own (any of them matches): one operation is named by its label,
    // "METHOD /path", never by a path and a method side by side (that would select every such method).
    writeFileSync(
      config,
      `
[[operations]]
include-path-regex = "^/v1/(payment-methods|subscriptions)|^/v1/tracks/[^/]+/stream$"
headers = { Authorization = "Bearer ${listener}" }

[[operations]]
# Uploads and submissions are a creator's.
include-path-regex = "^/v1/(uploads|tracks)$|^/v1/uploads/"
headers = { Authorization = "Bearer ${creator}" }

[[operations]]
# A page token is one this API gave out (sealed): any other well-formed string is refused.
include-name = "GET /v1/workflows"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "429"]

[[operations]]
# Submitting a track: a UPC's check digit, and genres and countries the catalog knows, are the database's to
# say (400). Starting an upload: an Idempotency-Key is bound to the request it came with (422 for another).
# Streaming one: the raw body has no schema; its length decides (none 411, empty 422, over the declared 413).
include-path-regex = "^/v1/(tracks|uploads|uploads/[^/]+)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "411", "413", "422", "429"]

[[operations]]
# \`to\` must not be before \`from\`, and at most 366 days after it.
include-path = "/v1/artists/{id}/stats"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "429"]

[[operations]]
# Ticks are checked one by one (any JSON; a bad one is named in the 202), but a body with a \`__proto__\` key,
# or \`constructor.prototype\`, anywhere is refused whole (400): prototype poisoning, refused by the JSON
# parser before any schema, a rule the free-form ticks' schema cannot state.
include-name = "POST /v1/play-ticks"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "429"]

[[operations]]
# A re-run's repinned cut-off falls on a whole hour, at or after the end of the month in the path.
include-name = "POST /v1/royalties/settlements/{month}/reruns"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "422", "429"]

[[operations]]
# A compliance token must name the user (userId); a listener asking for themselves leaves it out. The schema
# cannot tie the field to the token: the fuzzer's token has compliance, so a body without userId is refused.
# Fuzzed as compliance rather than as a listener: userId then reaches any user, not only the token's own.
include-name = ["POST /v1/gdpr/erasure-requests", "POST /v1/gdpr/export-requests"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "429"]

[[operations]]
# An Idempotency-Key is bound to the request it came with: the fuzzer reuses a generated key ("0") with
# another body, and the documented answer is 422 (idempotency-key-reused).
include-name = ["POST /v1/ping", "POST /v1/billing/reconciliations"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422", "429"]
`,
    );
    const started = Date.now();
    const { code, out } = await schemathesis(
      bin,
      [
        '--config-file',
        config,
        'run',
        `${base}/docs/json`,
        '--checks',
        'all',
        '--phases',
        'examples,coverage,fuzzing',
        '--max-examples',
        String(EXAMPLES_PER_OPERATION),
        // One worker: CPython 3.11's ast module is not thread-safe, and Hypothesis parses lambdas with it
        // ("AST constructor recursion depth mismatch" with two).
        '--workers',
        '1',
        '--request-timeout',
        '30',
        '--header',
        `Authorization: Bearer ${operator}`,
        '--generation-database',
        'none',
        '--no-color',
      ],
      { PATH: process.env.PATH, HOME: process.env.HOME },
      dir,
    );
    const summary = out.split('\n').slice(-40).join('\n');
    expect({ code, output: code === 0 ? summary : out }).toEqual({ code: 0, output: summary });
    // It did test every operation of the document (the summary counts them).
    const doc = (await (await fetch(`${base}/docs/json`)).json()) as { paths: Record<string, object> };
    const operations = Object.values(doc.paths).reduce((n, item) => n + Object.keys(item).length, 0);
    expect(out).toMatch(new RegExp(`${operations} (selected|total)`));
    process.stdout.write(
      `schemathesis: ${operations} operations in ${Math.round((Date.now() - started) / 1000)} s\n`,
    );
  }, 360_000);
});
