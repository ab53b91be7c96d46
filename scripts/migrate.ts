import { config } from '../lib/config';
import { migratePostgres } from '../lib/migrate/postgres';

/** npm run migrate: brings every store to the current schema from empty; a no-op when run again. */
async function main(): Promise<void> {
  const cfg = config();
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const pg = await migratePostgres(cfg.postgres);
  say(`postgres: ${pg.length ? `applied ${pg.join(', ')}` : 'up to date'}`);
}

main().catch((err: Error) => {
  process.stderr.write(`migration failed: ${err.message}\n`);
  process.exit(1);
});
