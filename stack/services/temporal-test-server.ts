import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { exists, run, testServerLauncher, type StackContext } from '../context';
import { mavenClasspath } from '../provision';
import type { ServiceDef } from './types';

/**
 * Temporal's time-skipping test server from Maven Central. Not a long-running service: the SDK's
 * TestWorkflowEnvironment.createTimeSkipping starts it per suite through this launcher
 * (`existing-path`), so nothing is downloaded at test time. LoopbackTestServer is the stock
 * TestServer bound to 127.0.0.1 instead of every interface.
 */

const source = path.join(__dirname, '..', 'jvm', 'temporal-test-server', 'LoopbackTestServer.java');

async function buildLoopbackJar(ctx: StackContext, classpath: string): Promise<string> {
  const jar = path.join(ctx.cache, 'jvm', 'loopback-test-server.jar');
  if (exists(jar) && statSync(jar).mtimeMs >= statSync(source).mtimeMs) return jar;
  const classes = path.join(ctx.cache, 'jvm', 'loopback-test-server-classes');
  mkdirSync(classes, { recursive: true });
  await run('temporal-test-server', 'javac', ['--release', '17', '-cp', classpath, '-d', classes, source]);
  await run('temporal-test-server', 'jar', ['cf', jar, '-C', classes, '.']);
  return jar;
}

export const temporalTestServer: ServiceDef = {
  name: 'temporal-test-server',
  async provision(ctx) {
    await mavenClasspath(ctx, 'temporal-test-server', 'temporal-test-server');
    const classpath = readFileSync(
      path.join(ctx.cache, 'jvm', 'temporal-test-server.classpath'),
      'utf8',
    ).trim();
    const jar = await buildLoopbackJar(ctx, classpath);
    const launcher = testServerLauncher(ctx);
    // exec: the SDK stops the server by killing the process it started, which must be the JVM itself.
    writeFileSync(
      launcher,
      [
        '#!/bin/sh',
        "# Written by npm run stack: starts Temporal's time-skipping test server on 127.0.0.1:<port>.",
        `exec java -Xms32m -Xmx256m -Xss512k -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "${jar}:${classpath}" LoopbackTestServer "$@"`,
        '',
      ].join('\n'),
    );
    chmodSync(launcher, 0o755);
  },
  ports: () => [],
  async ready(ctx) {
    if (!exists(testServerLauncher(ctx))) throw new Error(`no launcher at ${testServerLauncher(ctx)}`);
  },
};
