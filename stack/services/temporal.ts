import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { run, type StackContext } from '../context';
import { goInstall } from '../provision';
import { httpProbe } from '../probes';
import type { ServiceDef } from './types';
import { SEARCH_ATTRIBUTE_TYPES } from '../../workflows/search-attributes';

/** Later tags of the CLI carry a `replace` directive and cannot be go-installed (DESIGN §3). */
export const TEMPORAL_CLI = { module: 'github.com/temporalio/cli/cmd/temporal', version: 'v1.5.1' };

/** Search attributes that make Cadenza's runs findable in the Web UI (DESIGN §2): the one list. */
export const SEARCH_ATTRIBUTES = SEARCH_ATTRIBUTE_TYPES;
/** The namespaces the dev server serves: the configured one (the demo's) and the tests'. */
export const TEST_NAMESPACE = 'cadenza-test';
/**
 * The contract fuzzer's: the API starts real runs for it (reconciliations, settlements, GDPR requests) that
 * no worker of its own serves; in a namespace of their own, no other test's worker ever picks one up.
 */
export const CONTRACT_NAMESPACE = 'cadenza-contract';

/**
 * The dev server re-reads the search-attribute map from SQLite on every request that touches one
 * (`system.forceSearchAttributesCacheRefreshOnRead`, so attributes added at run time show at once): 16
 * reads per renewal in a storm. Cadenza's attributes are all registered at start (above), so the
 * server's ordinary 60 s cache is enough. Shared with bench:renewals' own server.
 */
export const DEV_SERVER_TUNING = [
  '--dynamic-config-value',
  'system.forceSearchAttributesCacheRefreshOnRead=false',
];

const cli = (ctx: StackContext) => path.join(ctx.cacheBin, 'temporal');

export const temporal: ServiceDef = {
  name: 'temporal',
  async provision(ctx) {
    await goInstall(ctx, 'temporal', TEMPORAL_CLI.module, TEMPORAL_CLI.version, 'temporal');
  },
  ports: (ctx) => [ctx.config.temporal.port, ctx.config.temporal.uiPort],
  async prepare(ctx) {
    mkdirSync(path.join(ctx.data, 'temporal'), { recursive: true });
  },
  program(ctx) {
    const t = ctx.config.temporal;
    const attrs = Object.entries(SEARCH_ATTRIBUTES).map(([k, v]) => `--search-attribute ${k}=${v}`);
    return {
      command: [
        cli(ctx),
        'server start-dev',
        `--ip ${t.host} --port ${t.port} --ui-port ${t.uiPort} --http-port ${t.port + 10} --metrics-port ${t.port + 2}`,
        `--db-filename ${path.join(ctx.data, 'temporal', 'temporal.db')}`,
        // WAL without fsync per commit: runs survive a restart or a killed server (the OS keeps the
        // writes); only a machine crash could lose the last moments. The write rate is what starts need.
        '--sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=off',
        ...DEV_SERVER_TUNING,
        // More namespaces keep test runs apart from the demo's worker, and the fuzzer's from the tests'.
        `--namespace ${t.namespace} --namespace ${TEST_NAMESPACE} --namespace ${CONTRACT_NAMESPACE}`,
        ...attrs,
        '--log-level warn',
      ].join(' '),
    };
  },
  async ready(ctx) {
    await run('temporal', cli(ctx), [
      'operator',
      'cluster',
      'health',
      '--address',
      ctx.config.temporal.address,
    ]);
    await httpProbe(ctx.config.temporal.uiUrl);
    // A server whose database predates an attribute registers it now (start-dev only adds them at creation).
    for (const namespace of [ctx.config.temporal.namespace, TEST_NAMESPACE, CONTRACT_NAMESPACE]) {
      const listed = await run('temporal', cli(ctx), [
        'operator',
        'search-attribute',
        'list',
        '--namespace',
        namespace,
        '--address',
        ctx.config.temporal.address,
        '-o',
        'json',
      ]);
      const missing = Object.entries(SEARCH_ATTRIBUTES).filter(([name]) => !listed.includes(`"${name}"`));
      if (missing.length === 0) continue;
      await run('temporal', cli(ctx), [
        'operator',
        'search-attribute',
        'create',
        '--namespace',
        namespace,
        '--address',
        ctx.config.temporal.address,
        ...missing.flatMap(([name, type]) => ['--name', name, '--type', type]),
      ]);
    }
  },
  readyTimeoutMs: 60_000,
  url: (ctx) => ctx.config.temporal.uiUrl,
};
