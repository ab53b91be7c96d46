-- Rollups fed by materialized views. Counts are uniqExact states over IDs, so a tick inserted twice
-- (which a view sees before ReplacingMergeTree collapses it) never counts twice.

-- Per play and day: the play's ticks. Listened time = distinct ticks × 5 s; a play is
-- royalty-bearing when at least 30 s of it was listened to (≥ 6 ticks). A play crossing midnight
-- has a row per day; queries merge them by play_id.
CREATE TABLE IF NOT EXISTS plays (
  day             Date,
  track_id        UUID,
  play_id         UUID,
  user_id         UUID,
  country         FixedString(2),
  started_at      AggregateFunction(min, DateTime('UTC')),
  ticks           AggregateFunction(uniqExact, UUID),
  max_position_ms AggregateFunction(max, UInt32)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (track_id, day, play_id, user_id, country);

CREATE MATERIALIZED VIEW IF NOT EXISTS plays_mv TO plays AS
SELECT
  toDate(event_time) AS day,
  track_id,
  play_id,
  user_id,
  country,
  minState(event_time) AS started_at,
  uniqExactState(event_id) AS ticks,
  maxState(position_ms) AS max_position_ms
FROM play_ticks
GROUP BY day, track_id, play_id, user_id, country;

-- Daily plays, listeners and ticks per track and country (creator dashboards, 4B).
CREATE TABLE IF NOT EXISTS track_daily (
  day       Date,
  track_id  UUID,
  country   FixedString(2),
  plays     AggregateFunction(uniqExact, UUID),
  listeners AggregateFunction(uniqExact, UUID),
  ticks     AggregateFunction(uniqExact, UUID)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (track_id, day, country);

CREATE MATERIALIZED VIEW IF NOT EXISTS track_daily_mv TO track_daily AS
SELECT
  toDate(event_time) AS day,
  track_id,
  country,
  uniqExactState(play_id) AS plays,
  uniqExactState(user_id) AS listeners,
  uniqExactState(event_id) AS ticks
FROM play_ticks
GROUP BY day, track_id, country;

-- Daily activity per user (cohorts, churn, bots); the first day a user appears is min(day).
CREATE TABLE IF NOT EXISTS user_daily (
  user_id   UUID,
  day       Date,
  plays     AggregateFunction(uniqExact, UUID),
  ticks     AggregateFunction(uniqExact, UUID),
  countries AggregateFunction(uniqExact, FixedString(2))
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (user_id, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS user_daily_mv TO user_daily AS
SELECT
  user_id,
  toDate(event_time) AS day,
  uniqExactState(play_id) AS plays,
  uniqExactState(event_id) AS ticks,
  uniqExactState(country) AS countries
FROM play_ticks
GROUP BY user_id, day;
