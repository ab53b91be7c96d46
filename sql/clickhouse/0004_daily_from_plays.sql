-- The daily counts per track and country and the per-user activity are read from `plays` (one row per
-- play and day) at query time, no longer kept by rollups of their own. Their views fed every tick into
-- uniqExact sets of play, user and tick IDs, which each merge rewrote: at 100,000 ticks/s they cost
-- ClickHouse 4 µs of CPU per tick, more than the raw table and `plays` together (docs/BENCHMARKS.md,
-- bench:clickhouse-rollups). `plays` has a row per play, not per tick, so the same counts —
-- uniqExact(play_id), uniqExact(user_id), the days a user played — stay exact and quick from it.
DROP TABLE IF EXISTS track_daily_mv;
DROP TABLE IF EXISTS track_daily;
DROP TABLE IF EXISTS user_daily_mv;
DROP TABLE IF EXISTS user_daily;
