import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Resource } from '@opentelemetry/resources';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { makeWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import { bundleWorkflowCode, type WorkerOptions, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { loadConfig, type Config } from '../../lib/config';
import { stackContext, testServerLauncher } from '../../stack/context';
import { WORKFLOW_INTERCEPTORS } from '../../workers/interceptors';
import { SearchAttribute } from '../../workflows/search-attributes';

/**
 * Tests use their own Temporal namespace, apart from the demo worker started by npm run up
 * (CADENZA_TEST_NAMESPACE names another registered one, so two test runs on one server keep apart).
 */
export function testConfig(): Config {
  return loadConfig({
    ...process.env,
    CADENZA_TEMPORAL_NAMESPACE: process.env.CADENZA_TEST_NAMESPACE ?? 'cadenza-test',
  });
}

/** The time-skipping test server from Maven, never a download (DESIGN §3). */
export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const launcher = testServerLauncher(stackContext());
  if (!existsSync(launcher)) {
    throw new Error(`no Temporal test server at ${launcher}: run npm run stack -- up temporal-test-server`);
  }
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: launcher } },
  });
  // Like the stack's servers, the test server knows Cadenza's search attributes (runs upsert them).
  const types = temporal.api.enums.v1.IndexedValueType;
  const indexed: Record<string, temporal.api.enums.v1.IndexedValueType> = {
    KEYWORD: types.INDEXED_VALUE_TYPE_KEYWORD,
    BOOL: types.INDEXED_VALUE_TYPE_BOOL,
    INT: types.INDEXED_VALUE_TYPE_INT,
    DATETIME: types.INDEXED_VALUE_TYPE_DATETIME,
    TEXT: types.INDEXED_VALUE_TYPE_TEXT,
  };
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      Object.values(SearchAttribute).map((k) => [
        k.name,
        indexed[k.type] as temporal.api.enums.v1.IndexedValueType,
      ]),
    ),
  });
  return env;
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/**
 * Workflow code bundled once and reused by every worker of every test file: the bundle is kept in the
 * git-ignored `.stack/` under a hash of what goes into it (workflows/, domain/, the lockfile), so only the
 * first file of a run pays webpack's ~10 s.
 */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= (async () => {
    const root = path.join(__dirname, '..', '..');
    const hash = createHash('sha256');
    for (const dir of ['workflows', 'domain', 'workers/interceptors.ts', 'package-lock.json']) {
      for (const file of filesUnder(path.join(root, dir))) hash.update(file).update(readFileSync(file));
    }
    const cached = path.join(
      root,
      '.stack',
      'test-bundles',
      `workflows-${hash.digest('hex').slice(0, 16)}.js`,
    );
    if (existsSync(cached)) return { code: readFileSync(cached, 'utf8'), sourceMap: '' };
    const built = await bundleWorkflowCode({
      workflowsPath: require.resolve('../../workflows'),
      workflowInterceptorModules: [WORKFLOW_INTERCEPTORS],
      logger: quietLogger,
    });
    mkdirSync(path.dirname(cached), { recursive: true });
    const partial = `${cached}.${process.pid}`;
    writeFileSync(partial, built.code);
    renameSync(partial, cached); // whole or not at all, if two runs race
    return built;
  })();
  return bundle;
}

function filesUnder(p: string): string[] {
  if (!existsSync(p)) return [];
  if (!statSync(p).isDirectory()) return [p];
  return readdirSync(p)
    .sort()
    .flatMap((name) => filesUnder(path.join(p, name)));
}

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };

export const temporalCli = () => path.join(stackContext().cacheBin, 'temporal');

/**
 * The bundle carries the tracing workflow interceptors, which export spans through a sink: a test
 * worker that does not trace still registers the sink (spans are dropped) instead of logging errors.
 */
export function workflowSinks(): WorkerOptions['sinks'] {
  const drop: SpanProcessor = {
    onStart: () => undefined,
    onEnd: () => undefined,
    forceFlush: async () => undefined,
    shutdown: async () => undefined,
  };
  return { exporter: makeWorkflowExporter(drop, new Resource({})) };
}
