import { readdirSync, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createClickHouse } from '../lib/clients/clickhouse';
import { config } from '../lib/config';
import { clickHouseMigrations } from '../sql/migrate/clickhouse';
import { ROW_COLUMNS, TickRows } from '../domain/play-ticks/rows';
import { FastRandom, Zipf } from '../scripts/seed/random';
import { scratchDatabases } from '../stack/scratch';
import { summary } from './report';

/**
 * npm run bench:clickhouse-rollups -- [--rate 100000] [--duration 30] [--upto 0004]
 * What the ClickHouse schema costs per tick: ticks shaped like the load generator's (Zipf tracks, a tick
 * per play every 5 s, all today) inserted as RowBinary every 500 ms at `rate` for `duration`, into a
 * scratch database with the DDL files up to `--upto` applied (0001: the raw table alone; 0003: with the
 * three per-tick rollups of before; 0004: the current schema). The server's CPU seconds (from /proc,
 * merges included) over the run, per tick. Nothing else should be loading the machine meanwhile.
 */
function clickHouseCpuSeconds(): number {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!cmd.includes('clickhouse-server')) continue;
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 10 ms
  }
  throw new Error('no clickhouse-server process: start the stack (npm run stack -- up)');
}

const COUNTRIES = ['US', 'GB', 'DE', 'BR', 'MX', 'FR', 'IN', 'JP', 'ES', 'IT', 'SE', 'PL'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '100000' },
      duration: { type: 'string', default: '30' },
      upto: { type: 'string', default: clickHouseMigrations().at(-1)!.version.slice(0, 4) },
    },
  });
  const rate = Number(values.rate);
  const seconds = Number(values.duration);
  const db = await scratchDatabases(config());
  const client = createClickHouse(db.config.clickhouse);
  try {
    const applied = clickHouseMigrations().filter((m) => m.version.slice(0, 4) <= values.upto);
    for (const m of applied) for (const statement of m.statements) await client.command({ query: statement });
    const r = new FastRandom(3);
    const users = Array.from({ length: 50_000 }, () => r.uuid());
    const tracks = Array.from({ length: 5000 }, () => r.uuid());
    const zipf = new Zipf(tracks.length);
    const newPlay = () => ({
      play_id: r.uuid(),
      user_id: users[r.int(0, users.length - 1)]!,
      track_id: tracks[zipf.sample(r)]!,
      country: r.pick(COUNTRIES),
      position: 0,
      left: r.chance(0.25) ? r.int(1, 5) : r.int(6, 60),
    });
    // rate × 5 plays, each ticking once per 5 s: a 500 ms insert holds a tenth of them.
    const plays = Array.from({ length: rate * 5 }, newPlay);
    const perInsert = rate / 2;
    let cursor = 0;
    let inserted = 0;
    let behindMs = 0;
    const cpu0 = clickHouseCpuSeconds();
    const t0 = Date.now();
    for (let b = 0; b < seconds * 2; b++) {
      const due = t0 + b * 500;
      if (Date.now() < due) await new Promise((res) => setTimeout(res, due - Date.now()));
      else behindMs = Math.max(behindMs, Date.now() - due);
      const rows = new TickRows(perInsert, false);
      const eventTime = new Date().toISOString();
      for (let i = 0; i < perInsert; i++) {
        const k = cursor++ % plays.length;
        const p = plays[k]!;
        p.position += 5000;
        rows.add({
          event_id: r.uuid(),
          play_id: p.play_id,
          user_id: p.user_id,
          track_id: p.track_id,
          country: p.country,
          device_id: 'bench-1',
          position_ms: p.position,
          event_time: eventTime,
        });
        if (--p.left === 0) plays[k] = newPlay();
      }
      const { stream } = await client.exec({
        query: `INSERT INTO play_ticks (${ROW_COLUMNS.join(', ')}) FORMAT RowBinary`,
        values: Readable.from([rows.bytes()], { objectMode: false }),
      });
      stream.resume();
      await finished(stream);
      inserted += perInsert;
    }
    const cpu = clickHouseCpuSeconds() - cpu0;
    summary('clickhouse-rollups', {
      ddl_upto: applied.at(-1)!.version,
      rate_per_s: rate,
      ticks: inserted,
      wall_s: (Date.now() - t0) / 1000,
      max_behind_ms: behindMs,
      clickhouse_cpu_s: cpu,
      clickhouse_us_per_tick: (cpu / inserted) * 1e6,
    });
  } finally {
    await client.close();
    await db.drop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
