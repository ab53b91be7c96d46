-- Raw play-ticks, one row per tick (a client sends one every 5 s while a track plays).
-- ReplacingMergeTree: a tick delivered twice (Kafka re-delivery) has the same sorting key, event_id
-- last, and collapses on merge; queries that must be exact before merges count uniqExact(event_id).
CREATE TABLE IF NOT EXISTS play_ticks (
  event_id     UUID,
  play_id      UUID,
  user_id      UUID,
  track_id     UUID,
  country      FixedString(2),
  device_id    String,
  position_ms  UInt32,
  event_time   DateTime('UTC'),
  ingested_at  DateTime('UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (track_id, toDate(event_time), user_id, event_id);
