import { chmodSync, writeFileSync } from 'node:fs';
import { testServerLauncher } from '../context';
import { javaArgFile, mavenClasspath } from '../provision';
import type { ServiceDef } from './types';

/**
 * Temporal's time-skipping test server from Maven Central. Not a long-running service: the SDK's
 * TestWorkflowEnvironment.createTimeSkipping starts it per test suite through this launcher
 * (`existing-path`), so nothing is downloaded at test time.
 */
export const temporalTestServer: ServiceDef = {
  name: 'temporal-test-server',
  async provision(ctx) {
    const argFile = await mavenClasspath(ctx, 'temporal-test-server', 'temporal-test-server');
    const launcher = testServerLauncher(ctx);
    writeFileSync(
      launcher,
      `#!/bin/sh\n# Written by npm run stack: starts Temporal's time-skipping test server on the port given.\nexec java -Xms64m -Xmx512m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC @${argFile} io.temporal.testserver.TestServer "$@"\n`,
    );
    chmodSync(launcher, 0o755);
  },
  ports: () => [],
  async ready(ctx) {
    const { accessSync, constants } = await import('node:fs');
    accessSync(testServerLauncher(ctx), constants.X_OK);
  },
};
