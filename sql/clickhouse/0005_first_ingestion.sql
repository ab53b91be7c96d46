-- A settlement counts a tick when it was FIRST ingested before the cut-off, and must give the same answer
-- after a tick is delivered again later and the copies merge. Until now `play_ticks` was a
-- ReplacingMergeTree(ingested_at): a merge kept the LATEST copy, so a re-delivery moved a tick past the
-- cut-off. Now:
--   * play_ticks keeps the FIRST copy: its version column is larger for an earlier ingestion;
--   * plays (the per-play rollup) has a row per play, day and hour of ingestion, so "the ticks ingested
--     before an hour" is a filter on rows; ticks are uniqExact states, so a copy ingested later adds
--     nothing to a play that already counted the tick, and adds it only past the cut-off otherwise.
-- Engines cannot change in place: new tables are made, swapped in by name and filled from the old ones.
-- The view is made again after the swap (18.16 binds a view to its source's name, current releases to the
-- table itself). Ticks that arrive between the swap and the new view are rolled up once more right after
-- (rollup states are idempotent: sets, min, max). A failure after the RENAME needs a person: the old
-- tables are play_ticks_before_0005 and plays_before_0005.
CREATE TABLE IF NOT EXISTS play_ticks_0005 (
  event_id     UUID,
  play_id      UUID,
  user_id      UUID,
  track_id     UUID,
  country      FixedString(2),
  device_id    String,
  position_ms  UInt32,
  event_time   DateTime('UTC'),
  ingested_at  DateTime('UTC') DEFAULT now(),
  first_ingestion_rank UInt32 MATERIALIZED 4294967295 - toUInt32(ingested_at)
) ENGINE = ReplacingMergeTree(first_ingestion_rank)
PARTITION BY toYYYYMM(event_time)
ORDER BY (track_id, toDate(event_time), user_id, event_id);

CREATE TABLE IF NOT EXISTS plays_0005 (
  day             Date,
  track_id        UUID,
  play_id         UUID,
  user_id         UUID,
  country         FixedString(2),
  ingested_hour   DateTime('UTC'),
  started_at      AggregateFunction(min, DateTime('UTC')),
  ticks           AggregateFunction(uniqExact, UUID),
  max_position_ms AggregateFunction(max, UInt32)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (track_id, day, play_id, user_id, country, ingested_hour);

DROP TABLE IF EXISTS plays_mv;

RENAME TABLE play_ticks TO play_ticks_before_0005, play_ticks_0005 TO play_ticks,
             plays TO plays_before_0005, plays_0005 TO plays;

CREATE MATERIALIZED VIEW IF NOT EXISTS plays_mv TO plays AS
SELECT
  toDate(event_time) AS day,
  track_id,
  play_id,
  user_id,
  country,
  toStartOfHour(ingested_at) AS ingested_hour,
  minState(event_time) AS started_at,
  uniqExactState(event_id) AS ticks,
  maxState(position_ms) AS max_position_ms
FROM play_ticks
GROUP BY day, track_id, play_id, user_id, country, ingested_hour;

INSERT INTO plays
SELECT
  toDate(event_time) AS day,
  track_id,
  play_id,
  user_id,
  country,
  toStartOfHour(ingested_at) AS ingested_hour,
  minState(event_time) AS started_at,
  uniqExactState(event_id) AS ticks,
  maxState(position_ms) AS max_position_ms
FROM play_ticks
GROUP BY day, track_id, play_id, user_id, country, ingested_hour;

INSERT INTO play_ticks (event_id, play_id, user_id, track_id, country, device_id, position_ms, event_time, ingested_at)
SELECT event_id, play_id, user_id, track_id, country, device_id, position_ms, event_time, ingested_at
FROM play_ticks_before_0005;

DROP TABLE IF EXISTS play_ticks_before_0005;

DROP TABLE IF EXISTS plays_before_0005;
