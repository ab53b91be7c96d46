import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ClickHouseClient } from '@clickhouse/client';
import {
  deleteUserRows,
  residueColumns,
  residueCount,
  userMutations,
  userRowCount,
  userTables,
} from '../../activities/compliance/clickhouse';
import { CLICKHOUSE_EXPORT } from '../../activities/compliance/export';
import type { ChFragment } from '../../lib/clickhouse-sql';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { clickHouseMigrations, migrateClickHouse } from '../../sql/migrate/clickhouse';
import { stackContext } from '../../stack/context';
import { chdbPython } from '../../stack/services/chdb';
import { scratchDatabases } from '../../stack/scratch';
import { testConfig } from '../helpers/env';

/**
 * The GDPR slice's ClickHouse SQL on Debian's 18.16 and on chdb (a current engine): the discovery of the
 * tables with a user, the counts, the mutation and its polling, the residue check and the export's
 * queries are accepted by both and answer alike.
 */
const U = randomUUID();
const V = randomUUID();
const tsv = (rows: unknown[][]) => rows.map((r) => r.join('\t')).join('\n') + '\n';
const ticks = [U, U, U, V].map((user, k) => [
  randomUUID(),
  k < 2 ? '00000000-0000-4000-8000-000000000001' : randomUUID(),
  user,
  '00000000-0000-4000-8000-0000000000aa',
  'SE',
  `web-${k}`,
  (k + 1) * 5000,
  `2025-05-20 12:00:0${k}`,
]);
const inserts = [
  {
    table: 'play_ticks',
    columns: [
      'event_id',
      'play_id',
      'user_id',
      'track_id',
      'country',
      'device_id',
      'position_ms',
      'event_time',
    ],
    tsv: tsv(ticks),
  },
  {
    table: 'dim_users',
    columns: ['user_id', 'signup_date', 'country', 'tier', 'version'],
    tsv: tsv([[U, '2024-01-01', 'SE', 'free', 1]]),
  },
];

describe('GDPR ClickHouse SQL on 18.16 and on a current release (chdb)', () => {
  let db: Awaited<ReturnType<typeof scratchDatabases>>;
  let client: ClickHouseClient;
  beforeAll(async () => {
    db = await scratchDatabases(testConfig(), {});
    await migrateClickHouse(db.config.clickhouse);
    client = createClickHouse(db.config.clickhouse);
    for (const ins of inserts)
      await client.command({
        query: `INSERT INTO ${ins.table} (${ins.columns.join(', ')}) FORMAT TabSeparated\n${ins.tsv}`,
      });
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await db?.drop();
  });

  it('accepts every erasure and export query, with the same answers', async () => {
    const columns = [
      { name: 'device_id', type: 'String' },
      { name: 'user_id', type: 'UUID' },
    ];
    const compared: Record<string, ChFragment> = {
      tables: userTables(),
      count: userRowCount('play_ticks', U),
      residue: residueCount('play_ticks', columns, U),
      exportTicks: CLICKHOUSE_EXPORT[0]!.query(U),
      exportPlays: CLICKHOUSE_EXPORT[1]!.query(U),
    };
    const accepted: Record<string, ChFragment> = {
      columns: residueColumns(),
      mutationsBefore: userMutations(U),
      delete: deleteUserRows('play_ticks', U),
      mutationsAfter: userMutations(U),
    };
    const payload = {
      database: 'cadenza',
      statements: clickHouseMigrations().flatMap((m) => m.statements),
      inserts,
      queries: Object.fromEntries(Object.entries({ ...compared, ...accepted }).map(([k, q]) => [k, q.text])),
    };
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'cadenza-chdb-')), 'payload.json');
    writeFileSync(file, JSON.stringify(payload));
    const { stdout } = await promisify(execFile)(chdbPython(stackContext()), [
      path.join(__dirname, '..', 'chdb', 'run.py'),
      file,
    ]);
    const out = JSON.parse(stdout) as {
      fatal?: string;
      results: Record<string, unknown[] | { error: string }>;
    };
    expect(out.fatal).toBeUndefined();
    const normalise = (rows: unknown[]) =>
      rows.map((r) => JSON.stringify(Object.entries(r as object).map(([k, v]) => [k, String(v)])));
    for (const name of Object.keys(accepted)) {
      const modern = out.results[name];
      expect([name, modern && !Array.isArray(modern) ? modern.error : 'ok']).toEqual([name, 'ok']);
    }
    for (const [name, q] of Object.entries(compared)) {
      const modern = out.results[name];
      expect([name, modern && !Array.isArray(modern) ? modern.error : 'ok']).toEqual([name, 'ok']);
      const old = await (await client.query({ query: q.text, format: 'JSONEachRow' })).json<object>();
      expect([name, normalise(modern as unknown[])]).toEqual([name, normalise(old)]);
    }
    // On 18.16 the mutation runs and is polled to done like the erasure does.
    await client.command({ query: deleteUserRows('play_ticks', U).text });
    for (;;) {
      const rows = await (
        await client.query({ query: userMutations(U).text, format: 'JSONEachRow' })
      ).json<{
        running: string;
      }>();
      if (rows.length && rows.every((r) => Number(r.running) === 0)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const [left] = await (
      await client.query({ query: userRowCount('play_ticks', U).text, format: 'JSONEachRow' })
    ).json<{
      n: string;
    }>();
    expect(Number(left?.n)).toBe(0);
  }, 180_000);
});
