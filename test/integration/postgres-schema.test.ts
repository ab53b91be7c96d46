import { sql, type DatabasePool } from 'slonik';
import { createPostgresPool } from '../../lib/clients/postgres';
import { migratePostgres } from '../../sql/migrate/postgres';
import { scratchDatabases } from '../../stack/scratch';
import { testConfig } from '../helpers/env';

/** Migrations from empty, re-applied as a no-op, and the constraints that keep bad data out. */
describe('PostgreSQL schema', () => {
  let db: Awaited<ReturnType<typeof scratchDatabases>>;
  let pool: DatabasePool;
  let artistId: string;
  let albumId: string;

  beforeAll(async () => {
    db = await scratchDatabases(testConfig());
    pool = await createPostgresPool(db.config.postgres, 2);
  }, 60_000);
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it('applies every migration to an empty database, and re-applying is a no-op', async () => {
    const first = await migratePostgres(db.config.postgres);
    expect(first.length).toBeGreaterThanOrEqual(8);
    expect(first[0]).toBe('0001_reference-data');
    expect(await migratePostgres(db.config.postgres)).toEqual([]);
    const tables = await pool.anyFirst(
      sql.unsafe`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`,
    );
    expect(tables).toEqual(
      expect.arrayContaining([
        'users',
        'subscriptions',
        'tracks',
        'playlist_tracks',
        'ad_campaigns',
        'royalty_rates',
        'artist_payouts',
        'gdpr_requests',
      ]),
    );
    const partitioned = await pool.anyFirst(
      sql.unsafe`SELECT parent_table FROM partman.part_config ORDER BY 1`,
    );
    expect(partitioned).toEqual([
      'public.ad_impressions',
      'public.audit_log',
      'public.payment_transactions',
      'public.session_logs',
    ]);
    // Seed the catalog rows the constraint tests lean on.
    artistId = await pool.oneFirst(
      sql.unsafe`INSERT INTO artists (name, country) VALUES ('Test Artist', 'SE') RETURNING artist_id::text`,
    );
    albumId = await pool.oneFirst(sql.unsafe`
      INSERT INTO albums (artist_id, title, upc, release_date) VALUES (${artistId}, 'Test Album', '036000291452', '2024-01-01') RETURNING album_id::text`);
  }, 60_000);

  const track = (isrc: string, checksum: string) => sql.unsafe`
    INSERT INTO tracks (album_id, artist_id, title, isrc, duration_ms, checksum_sha256, release_date)
    VALUES (${albumId}, ${artistId}, 'Song', ${isrc}, 180000, ${checksum}, '2024-01-01')`;
  const sha = (c: string) => c.repeat(64);

  it('accepts a well-formed track and rejects a malformed ISRC', async () => {
    await pool.query(track('SEABC2400001', sha('a')));
    await expect(pool.query(track('SE-ABC-24-00002', sha('b')))).rejects.toThrow(/check constraint/);
    await expect(pool.query(track('se1232400002', sha('b')))).rejects.toThrow(/check constraint/);
  });

  it('rejects a duplicate audio checksum and a duplicate ISRC', async () => {
    await expect(pool.query(track('SEABC2400003', sha('a')))).rejects.toThrow(/tracks_checksum_sha256_key/);
    await expect(pool.query(track('SEABC2400001', sha('c')))).rejects.toThrow(/tracks_isrc_key/);
  });

  it('checks the UPC/EAN check digit', async () => {
    const album = (upc: string) =>
      sql.unsafe`INSERT INTO albums (artist_id, title, upc, release_date) VALUES (${artistId}, 'A', ${upc}, '2024-01-01')`;
    await expect(pool.query(album('036000291453'))).rejects.toThrow(/check constraint/); // wrong check digit
    await expect(pool.query(album('03600029145'))).rejects.toThrow(/check constraint/); // 11 digits
    await pool.query(album('4006381333931')); // a valid EAN-13
  });

  it('rejects unknown country and currency codes and negative money', async () => {
    await expect(
      pool.query(sql.unsafe`INSERT INTO artists (name, country) VALUES ('X', 'XX')`),
    ).rejects.toThrow(/foreign key/);
    const user = await pool.oneFirst(
      sql.unsafe`INSERT INTO users (email, display_name, country) VALUES ('a@example.test', 'A', 'DE') RETURNING user_id::text`,
    );
    const sub = (currency: string, price: string) => sql.unsafe`
      INSERT INTO subscriptions (user_id, plan, status, country, currency, price, current_period_start, current_period_end)
      VALUES (${user}, 'premium', 'active', 'DE', ${currency}, ${price}::numeric, now(), now() + interval '1 month')`;
    await expect(pool.query(sub('EUX', '9.99'))).rejects.toThrow(/foreign key/);
    await expect(pool.query(sub('EUR', '-0.01'))).rejects.toThrow(/check constraint/);
    await pool.query(sub('EUR', '9.99'));
    await expect(
      pool.query(
        sql.unsafe`INSERT INTO royalty_rates (artist_id, country, rate_per_play, currency, rate_version, effective_from) VALUES (${artistId}, 'DE', -0.001, 'EUR', 1, '2024-01-01')`,
      ),
    ).rejects.toThrow(/check constraint/);
  });

  it('keeps payment methods to tokens: a card number is refused', async () => {
    const user = await pool.oneFirst(
      sql.unsafe`INSERT INTO users (email, display_name, country) VALUES ('b@example.test', 'B', 'DE') RETURNING user_id::text`,
    );
    const pm = (token: string) =>
      sql.unsafe`INSERT INTO payment_methods (user_id, provider, provider_token) VALUES (${user}, 'sandbox', ${token})`;
    await expect(pool.query(pm('4242 4242 4242 4242'))).rejects.toThrow(/check constraint/);
    await pool.query(pm('pm_test_ok_1'));
  });

  it('makes the audit log append-only: UPDATE, DELETE and TRUNCATE fail', async () => {
    await pool.query(
      sql.unsafe`INSERT INTO audit_log (actor, action, subject_type, subject_id) VALUES ('test', 'created', 'user', 'u1')`,
    );
    await expect(pool.query(sql.unsafe`UPDATE audit_log SET actor = 'mallory'`)).rejects.toThrow(
      /append-only/,
    );
    await expect(pool.query(sql.unsafe`DELETE FROM audit_log`)).rejects.toThrow(/append-only/);
    await expect(pool.query(sql.unsafe`TRUNCATE audit_log`)).rejects.toThrow(/append-only/);
    expect(await pool.oneFirst(sql.unsafe`SELECT count(*)::int FROM audit_log WHERE actor = 'test'`)).toBe(1);
  });

  it('routes time-partitioned rows into monthly partitions', async () => {
    await pool.query(
      sql.unsafe`INSERT INTO session_logs (started_at, user_id, ip_country, device_id) VALUES (now(), gen_random_uuid(), 'SE', 'd1')`,
    );
    const partition = await pool.oneFirst(
      sql.unsafe`SELECT tableoid::regclass::text FROM session_logs LIMIT 1`,
    );
    expect(partition).toMatch(/^session_logs_p\d{4}_\d{2}$/);
  });
});
