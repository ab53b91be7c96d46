import { Client, Connection } from '@temporalio/client';
import { config } from '../lib/config';
import { ensureSchedules } from '../lib/schedules';
import { SCHEDULES } from '../workflows/schedules';

/** `npm run schedules`: every declared Temporal Schedule made or brought up to date; a second run changes nothing. */
async function main(): Promise<void> {
  const cfg = config();
  const connection = await Connection.connect({ address: cfg.temporal.address });
  try {
    const client = new Client({ connection, namespace: cfg.temporal.namespace });
    for (const { scheduleId, outcome } of await ensureSchedules(client, SCHEDULES, cfg)) {
      process.stdout.write(`schedule ${scheduleId}: ${outcome}\n`);
    }
  } finally {
    await connection.close();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`schedules failed: ${err.message}\n`);
  process.exit(1);
});
