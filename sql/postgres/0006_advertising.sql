-- Up Migration
-- Advertising: advertisers, campaigns (promotional or ad), creatives, and the impressions fact table.

CREATE TABLE advertisers (
  advertiser_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name          text NOT NULL,
  country       char(2) NOT NULL REFERENCES countries,
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ad_campaigns (
  campaign_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  advertiser_id      uuid NOT NULL REFERENCES advertisers,
  name               text NOT NULL,
  campaign_type      text NOT NULL CHECK (campaign_type IN ('promotional', 'ad')),
  promoted_artist_id uuid REFERENCES artists,
  start_date         date NOT NULL,
  end_date           date NOT NULL,
  cpm                numeric(10, 4) NOT NULL CHECK (cpm >= 0),
  budget             numeric(14, 2) NOT NULL CHECK (budget >= 0),
  currency           char(3) NOT NULL REFERENCES currencies,
  target_countries   char(2)[] NOT NULL DEFAULT '{}',
  created_at         timestamptz NOT NULL DEFAULT now(),
  CHECK (end_date >= start_date),
  CHECK (campaign_type = 'ad' OR promoted_artist_id IS NOT NULL)
);
CREATE INDEX ad_campaigns_dates ON ad_campaigns (campaign_type, start_date, end_date);

CREATE TABLE ad_creatives (
  creative_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  campaign_id uuid NOT NULL REFERENCES ad_campaigns,
  kind        text NOT NULL CHECK (kind IN ('audio', 'display', 'video')),
  object_key  text,
  duration_ms integer CHECK (duration_ms > 0),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ad_impressions (
  impression_id uuid NOT NULL DEFAULT gen_random_uuid(),
  shown_at      timestamptz NOT NULL,
  campaign_id   uuid NOT NULL,
  creative_id   uuid,
  user_id       uuid NOT NULL,
  country       char(2) NOT NULL,
  PRIMARY KEY (impression_id, shown_at)
) PARTITION BY RANGE (shown_at);
CREATE INDEX ad_impressions_campaign ON ad_impressions (campaign_id, shown_at);
SELECT cadenza_partition_by_month('public.ad_impressions', 'shown_at');

-- Down Migration
DROP TABLE ad_impressions CASCADE;
DELETE FROM partman.part_config WHERE parent_table = 'public.ad_impressions';
DROP TABLE ad_creatives;
DROP TABLE ad_campaigns;
DROP TABLE advertisers;
