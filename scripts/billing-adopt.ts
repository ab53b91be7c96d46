import { parseArgs } from 'node:util';
import { config } from '../lib/config';
import { adoptLiveSubscriptions } from './billing/adopt';

/**
 * npm run billing:adopt [-- --batch 200]: every live subscription without a workflow gets one, continuing
 * from its current period and payment method. Safe to stop and run again.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { batch: { type: 'string', default: '200' } } });
  const batch = Number(values.batch);
  if (!Number.isInteger(batch) || batch < 1 || batch > 1000) throw new Error('--batch takes 1–1000');
  const report = await adoptLiveSubscriptions(config(), {
    batch,
    onPage: (r) =>
      process.stdout.write(`billing:adopt: ${r.rows} rows, ${r.started} started, ${r.running} running\n`),
  });
  process.stdout.write(
    `billing:adopt: done — ${report.started} workflows started, ${report.running} already running, of ${report.rows} rows never written by a workflow\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`billing:adopt failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
