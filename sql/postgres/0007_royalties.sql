-- Up Migration
-- Royalties & finance: effective-dated rates, settlement runs with frozen pins, snapshots and payouts.
-- Money is NUMERIC throughout; rounding happens once, in the settlement, by a documented rule.

CREATE TABLE royalty_rates (
  artist_id      uuid NOT NULL REFERENCES artists,
  country        char(2) NOT NULL REFERENCES countries,
  rate_per_play  numeric(12, 6) NOT NULL CHECK (rate_per_play >= 0),
  currency       char(3) NOT NULL REFERENCES currencies,
  rate_version   integer NOT NULL CHECK (rate_version > 0),
  effective_from date NOT NULL,
  effective_to   date,
  PRIMARY KEY (artist_id, country, effective_from),
  CHECK (effective_to IS NULL OR effective_to > effective_from)
);
CREATE INDEX royalty_rates_version ON royalty_rates (rate_version);

CREATE TABLE settlement_runs (
  run_id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  month              date NOT NULL CHECK (extract(day FROM month) = 1),
  ingestion_cutoff   timestamptz NOT NULL,
  rate_version       integer NOT NULL,
  policy_version     text NOT NULL,
  status             text NOT NULL CHECK (status IN ('running', 'awaiting_approval', 'approved', 'rejected', 'superseded', 'failed')),
  supersedes_run_id  uuid REFERENCES settlement_runs,
  statement_key      text,
  statement_sha256   text CHECK (statement_sha256 ~ '^[0-9a-f]{64}$'),
  total_amount       numeric(16, 2) CHECK (total_amount >= 0),
  created_at         timestamptz NOT NULL DEFAULT now(),
  decided_at         timestamptz,
  decided_by         text
);
CREATE INDEX settlement_runs_month ON settlement_runs (month, created_at);

-- Royalty-bearing plays per track and country, frozen from ClickHouse for one run.
CREATE TABLE settlement_snapshot_lines (
  run_id    uuid NOT NULL REFERENCES settlement_runs,
  track_id  uuid NOT NULL,
  artist_id uuid NOT NULL,
  country   char(2) NOT NULL,
  plays     bigint NOT NULL CHECK (plays >= 0),
  PRIMARY KEY (run_id, track_id, country)
);

CREATE TABLE artist_payouts (
  run_id    uuid NOT NULL REFERENCES settlement_runs,
  artist_id uuid NOT NULL REFERENCES artists,
  currency  char(3) NOT NULL REFERENCES currencies,
  plays     bigint NOT NULL CHECK (plays >= 0),
  amount    numeric(14, 2) NOT NULL CHECK (amount >= 0),
  PRIMARY KEY (run_id, artist_id, currency)
);
CREATE INDEX artist_payouts_artist ON artist_payouts (artist_id);

CREATE TABLE payout_lines (
  run_id        uuid NOT NULL REFERENCES settlement_runs,
  artist_id     uuid NOT NULL,
  track_id      uuid NOT NULL,
  country       char(2) NOT NULL,
  plays         bigint NOT NULL CHECK (plays >= 0),
  rate_per_play numeric(12, 6) NOT NULL CHECK (rate_per_play >= 0),
  currency      char(3) NOT NULL,
  amount        numeric(16, 6) NOT NULL CHECK (amount >= 0),
  PRIMARY KEY (run_id, track_id, country)
);
CREATE INDEX payout_lines_artist ON payout_lines (run_id, artist_id);

-- Down Migration
DROP TABLE payout_lines;
DROP TABLE artist_payouts;
DROP TABLE settlement_snapshot_lines;
DROP TABLE settlement_runs;
DROP TABLE royalty_rates;
