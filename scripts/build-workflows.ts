import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { config } from '../lib/config';
import { traceWorkflows, WORKFLOW_INTERCEPTORS } from '../workers/interceptors';

/** Pre-bundles the workflow code so a production worker starts without running webpack. */
async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    // Traced workflows only when an exporter is configured (see workers/interceptors.ts).
    workflowInterceptorModules: traceWorkflows(config().otel) ? [WORKFLOW_INTERCEPTORS] : [],
  });
  const out = path.resolve(process.argv[2] ?? path.join(__dirname, '..', 'dist', 'workflow-bundle.js'));
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, code);
  process.stdout.write(`wrote ${out} (${(code.length / 1024).toFixed(0)} KiB)\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
