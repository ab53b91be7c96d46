import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ClickHouseClient } from '@clickhouse/client';
import {
  artistDailyPlays,
  artistTotals,
  campaignAttribution,
  earlyChurn,
  rapidSkips,
  retentionCohorts,
  royaltyBearingPlays,
  topCountriesByPlays,
} from '../../api/queries/analytics';
import { settlementAggregation } from '../../activities/royalties/aggregate';
import { playCountsByTrack } from '../../activities/catalog/play-counts';
import type { ChFragment } from '../../lib/clickhouse-sql';
import { createClickHouse } from '../../lib/clients/clickhouse';
import { clickHouseMigrations, migrateClickHouse } from '../../sql/migrate/clickhouse';
import { generateDataset, generateTicks, type Tick } from '../../scripts/seed/generate';
import { chDateTime, TICK_COLUMNS } from '../../scripts/seed/load';
import { stackContext } from '../../stack/context';
import { chdbPython } from '../../stack/services/chdb';
import { scratchDatabases } from '../../stack/scratch';
import { testConfig } from '../helpers/env';

/**
 * The same DDL, data and queries on Debian's ClickHouse 18.16 and on chdb (a current engine):
 * both accept every statement, and both give the same answers.
 */
const NOW = new Date('2025-05-20T12:00:00Z');
const opts = { scale: 'small' as const, seed: 3, now: NOW, plays: 800 };
const NIL = '00000000-0000-0000-0000-000000000000';

const tsv = (rows: unknown[][]) => rows.map((r) => r.join('\t')).join('\n') + '\n';

describe('ClickHouse SQL on 18.16 and on a current release (chdb)', () => {
  let db: Awaited<ReturnType<typeof scratchDatabases>>;
  let client: ClickHouseClient;
  const data = generateDataset(opts);
  const ticks: Tick[] = [...generateTicks(data, opts)];
  const bot = data.botUserIds[0] as string;
  const month = { from: new Date('2025-05-01T00:00:00Z'), to: new Date('2025-06-01T00:00:00Z') };
  const queries: Record<string, ChFragment> = {
    topCountries: topCountriesByPlays(new Date(NOW.getTime() - 30 * 86_400_000)),
    earlyChurn: earlyChurn(new Date(NOW.getTime() - 30 * 86_400_000)),
    rapidSkips: rapidSkips(bot, NOW),
    retention: retentionCohorts(new Date(NOW.getTime() - 30 * 86_400_000)),
    campaigns: campaignAttribution(),
    royalties: royaltyBearingPlays(month.from, month.to),
    artistDaily: artistDailyPlays(data.tracks[0]!.artist_id, new Date('2025-05-01T00:00:00Z'), NOW),
    artistTotals: artistTotals(data.tracks[0]!.artist_id, new Date('2025-05-01T00:00:00Z'), NOW),
    // The settlement's aggregation (bot rule and trailing minimum on), its cut-off after the inserts below.
    settlement: settlementAggregation(
      {
        month: '2025-05',
        ingestionCutoff: new Date((Math.floor(Date.now() / 3_600_000) + 24) * 3_600_000).toISOString(),
      },
      {
        policyVersion: 1,
        minPlaySeconds: 30,
        minTrailingStreams: 2,
        trailingMonths: 12,
        botRule: 'short-play-bursts',
        botShortPlaySeconds: 15,
        botWindowSeconds: 600,
        botMinShortPlays: 2,
        rounding: 'largest-remainder',
      },
    ),
    playCounts: playCountsByTrack(),
  };
  const inserts = [
    {
      table: 'play_ticks',
      columns: TICK_COLUMNS,
      tsv: tsv(
        ticks.map((t) => [
          t.event_id,
          t.play_id,
          t.user_id,
          t.track_id,
          t.country,
          t.device_id,
          t.position_ms,
          chDateTime(t.event_time),
        ]),
      ),
    },
    {
      table: 'dim_tracks',
      columns: ['track_id', 'artist_id', 'album_id', 'duration_ms', 'release_date', 'version'],
      tsv: tsv(
        data.tracks.map((t) => [t.track_id, t.artist_id, t.album_id, t.duration_ms, t.release_date, 1]),
      ),
    },
    {
      table: 'dim_users',
      columns: ['user_id', 'signup_date', 'country', 'tier', 'version'],
      tsv: tsv(data.users.map((u) => [u.user_id, u.created_at.slice(0, 10), u.country, u.tier, 1])),
    },
    {
      table: 'dim_campaigns',
      columns: ['campaign_id', 'campaign_type', 'promoted_artist_id', 'start_date', 'end_date', 'version'],
      tsv: tsv(
        data.campaigns.map((c) => [
          c.campaign_id,
          c.campaign_type,
          c.promoted_artist_id ?? NIL,
          c.start_date,
          c.end_date,
          1,
        ]),
      ),
    },
  ];

  beforeAll(async () => {
    db = await scratchDatabases(testConfig());
    await migrateClickHouse(db.config.clickhouse);
    client = createClickHouse(db.config.clickhouse);
    for (const ins of inserts) {
      await client.command({
        query: `INSERT INTO ${ins.table} (${ins.columns.join(', ')}) FORMAT TabSeparated\n${ins.tsv}`,
      });
    }
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await db?.drop();
  });

  it('accepts every DDL statement and query, and agrees with 18.16 row for row', async () => {
    const payload = {
      database: 'cadenza',
      statements: clickHouseMigrations().flatMap((m) => m.statements),
      inserts,
      queries: Object.fromEntries(Object.entries(queries).map(([k, q]) => [k, q.text])),
    };
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'cadenza-chdb-')), 'payload.json');
    writeFileSync(file, JSON.stringify(payload));
    const { stdout } = await promisify(execFile)(
      chdbPython(stackContext()),
      [path.join(__dirname, '..', 'chdb', 'run.py'), file],
      {
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    const out = JSON.parse(stdout) as {
      fatal?: string;
      results: Record<string, unknown[] | { error: string }>;
    };
    expect(out.fatal).toBeUndefined();

    // Numbers may come back quoted (64-bit) or not, depending on the engine's JSON settings.
    const normalise = (rows: unknown[]) =>
      rows.map((r) => JSON.stringify(Object.entries(r as object).map(([k, v]) => [k, String(v)])));
    for (const [name, q] of Object.entries(queries)) {
      const modern = out.results[name];
      expect([name, modern && !Array.isArray(modern) ? modern.error : 'ok']).toEqual([name, 'ok']);
      const old = await (await client.query({ query: q.text, format: 'JSONEachRow' })).json<object>();
      expect([name, normalise(modern as unknown[])]).toEqual([name, normalise(old)]);
      expect([name, old.length > 0]).toEqual([name, true]);
    }
  }, 180_000);
});
