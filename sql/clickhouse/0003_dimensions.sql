-- Dimensions copied from PostgreSQL (by the refresh activity) for the joins of the analytics queries:
-- track → artist (5A, 4B), campaign dates (4B), user sign-up date and tier (1A, 3A).
-- ReplacingMergeTree keyed by the ID: a refresh re-inserts and the newest version wins.
CREATE TABLE IF NOT EXISTS dim_tracks (
  track_id     UUID,
  artist_id    UUID,
  album_id     UUID,
  duration_ms  UInt32,
  release_date Date,
  version      UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY track_id;

CREATE TABLE IF NOT EXISTS dim_campaigns (
  campaign_id        UUID,
  campaign_type      String,
  promoted_artist_id UUID,
  start_date         Date,
  end_date           Date,
  version            UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY campaign_id;

CREATE TABLE IF NOT EXISTS dim_users (
  user_id     UUID,
  signup_date Date,
  country     FixedString(2),
  tier        String,
  version     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY user_id;
