-- Up Migration
-- Royalty settlement that finance can re-run byte for byte. A run is defined by its pins (month,
-- ingestion cut-off, rate version, policy version, code version, adjustments up to an instant), and
-- everything a pin names is immutable: rate versions are published once and never changed, policies are
-- rows that never change, and an approved run — with its snapshot, lines and payouts — is refused any
-- change by the database itself.

-- Rates: a version is published once; its rows never change. A run pinned to version V reads, for each
-- (artist, country, effective_from), the row of the newest version <= V, so a version holds only what
-- it changes. Rows may be added to a version only while it is unpublished.
CREATE TABLE royalty_rate_versions (
  rate_version integer PRIMARY KEY CHECK (rate_version > 0),
  note         text NOT NULL DEFAULT '',
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);
INSERT INTO royalty_rate_versions (rate_version, note, published_at)
SELECT DISTINCT rate_version, 'rates from before versions were published', now() FROM royalty_rates;

ALTER TABLE royalty_rates DROP CONSTRAINT royalty_rates_pkey;
ALTER TABLE royalty_rates ADD PRIMARY KEY (rate_version, artist_id, country, effective_from);
ALTER TABLE royalty_rates ADD FOREIGN KEY (rate_version) REFERENCES royalty_rate_versions;
DROP INDEX royalty_rates_version;
CREATE INDEX royalty_rates_artist ON royalty_rates (artist_id, country, effective_from, rate_version);

CREATE FUNCTION cadenza_royalty_rates_append_only() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  RAISE EXCEPTION 'royalty_rates are append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'Add the changed rates to a new rate version and publish it.';
END
$$;
CREATE TRIGGER royalty_rates_no_update_or_delete BEFORE UPDATE OR DELETE ON royalty_rates
  FOR EACH ROW EXECUTE FUNCTION cadenza_royalty_rates_append_only();
CREATE TRIGGER royalty_rates_no_truncate BEFORE TRUNCATE ON royalty_rates
  FOR EACH STATEMENT EXECUTE FUNCTION cadenza_royalty_rates_append_only();

-- Once published, a version takes no more rows (checked per statement: a bulk load stays one check).
CREATE FUNCTION cadenza_royalty_rates_into_open_version() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  sealed integer;
BEGIN
  SELECT v.rate_version INTO sealed
  FROM royalty_rate_versions v
  WHERE v.published_at IS NOT NULL AND v.rate_version IN (SELECT DISTINCT rate_version FROM added)
  LIMIT 1;
  IF sealed IS NOT NULL THEN
    RAISE EXCEPTION 'rate version % is published: its rates cannot change', sealed
      USING ERRCODE = 'insufficient_privilege', HINT = 'Add the rates to a new, unpublished rate version.';
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER royalty_rates_into_open_version AFTER INSERT ON royalty_rates
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cadenza_royalty_rates_into_open_version();

CREATE FUNCTION cadenza_royalty_rate_versions_publish_once() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.published_at IS NOT NULL THEN
      RAISE EXCEPTION 'rate version % is published and cannot be deleted', OLD.rate_version
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
  END IF;
  IF OLD.published_at IS NOT NULL THEN
    RAISE EXCEPTION 'rate version % is published and cannot change', OLD.rate_version
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.rate_version <> OLD.rate_version THEN
    RAISE EXCEPTION 'a rate version keeps its number' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER royalty_rate_versions_publish_once BEFORE UPDATE OR DELETE ON royalty_rate_versions
  FOR EACH ROW EXECUTE FUNCTION cadenza_royalty_rate_versions_publish_once();

-- Policies: the rules a run applies, one row per version, never changed.
--   min_play_seconds      a play is royalty-bearing from this much listened time (ticks × 5 s);
--   min_trailing_streams  a track earns only with this many royalty-bearing plays in the trailing
--                         `trailing_months` months, the settled month included (0: no minimum);
--   bot rule              'short-play-bursts': a listener with at least `bot_min_short_plays` plays
--                         shorter than `bot_short_play_seconds` started inside one `bot_window_seconds`
--                         window (aligned to the epoch) in the month earns no artist anything that month;
--   rounding              'largest-remainder': per artist and currency the total is the sum of the exact
--                         line amounts rounded half up to the cent, and the cents go to the lines by
--                         largest remainder (ties: track, then country).
CREATE TABLE royalty_policies (
  policy_version         integer PRIMARY KEY CHECK (policy_version > 0),
  min_play_seconds       integer NOT NULL CHECK (min_play_seconds BETWEEN 1 AND 3600),
  min_trailing_streams   integer NOT NULL CHECK (min_trailing_streams >= 0),
  trailing_months        integer NOT NULL CHECK (trailing_months BETWEEN 1 AND 36),
  bot_rule               text NOT NULL CHECK (bot_rule IN ('none', 'short-play-bursts')),
  bot_short_play_seconds integer NOT NULL CHECK (bot_short_play_seconds BETWEEN 1 AND 3600),
  bot_window_seconds     integer NOT NULL CHECK (bot_window_seconds BETWEEN 60 AND 86400),
  bot_min_short_plays    integer NOT NULL CHECK (bot_min_short_plays >= 2),
  rounding               text NOT NULL CHECK (rounding IN ('largest-remainder')),
  note                   text NOT NULL DEFAULT '',
  created_at             timestamptz NOT NULL DEFAULT now()
);
INSERT INTO royalty_policies (policy_version, min_play_seconds, min_trailing_streams, trailing_months, bot_rule,
                              bot_short_play_seconds, bot_window_seconds, bot_min_short_plays, rounding, note)
VALUES (1, 30, 1000, 12, 'short-play-bursts', 15, 600, 10, 'largest-remainder',
        'the platform''s rules: 30 s, 1,000 streams in 12 months, bursts of 10 skips in 10 minutes');

CREATE FUNCTION cadenza_royalty_policies_append_only() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  RAISE EXCEPTION 'royalty_policies are append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege', HINT = 'Add a new policy version instead.';
END
$$;
CREATE TRIGGER royalty_policies_no_update_or_delete BEFORE UPDATE OR DELETE ON royalty_policies
  FOR EACH ROW EXECUTE FUNCTION cadenza_royalty_policies_append_only();
CREATE TRIGGER royalty_policies_no_truncate BEFORE TRUNCATE ON royalty_policies
  FOR EACH STATEMENT EXECUTE FUNCTION cadenza_royalty_policies_append_only();

-- Runs. Rows from before this migration are imports (settled elsewhere, such as the seed's past month):
-- they carry no workflow and no pins beyond the month.
ALTER TABLE settlement_runs DROP CONSTRAINT settlement_runs_status_check;
ALTER TABLE settlement_runs
  ALTER COLUMN policy_version DROP NOT NULL,
  ALTER COLUMN policy_version TYPE integer
    USING (CASE WHEN policy_version ~ '^[0-9]+$' THEN policy_version::integer END),
  ADD COLUMN origin text NOT NULL DEFAULT 'imported' CHECK (origin IN ('workflow', 'imported')),
  ADD COLUMN kind text NOT NULL DEFAULT 'settlement' CHECK (kind IN ('settlement', 'verification', 'correction')),
  ADD COLUMN workflow_id text UNIQUE,
  ADD COLUMN rerun integer NOT NULL DEFAULT 0 CHECK (rerun >= 0),
  ADD COLUMN code_version integer CHECK (code_version > 0),
  ADD COLUMN adjustments_through timestamptz,
  ADD COLUMN snapshot_run_id uuid REFERENCES settlement_runs,
  ADD COLUMN verifies_run_id uuid REFERENCES settlement_runs,
  ADD COLUMN superseded_by uuid REFERENCES settlement_runs,
  ADD COLUMN started_by text NOT NULL DEFAULT 'import',
  ADD COLUMN reason text CHECK (length(reason) <= 2000),
  ADD COLUMN idempotency_key text,
  ADD COLUMN request_hash text,
  ADD COLUMN snapshot_sha256 text CHECK (snapshot_sha256 ~ '^[0-9a-f]{64}$'),
  ADD COLUMN snapshot_lines bigint CHECK (snapshot_lines >= 0),
  ADD COLUMN snapshot_stats jsonb,
  ADD COLUMN reaggregation jsonb,
  ADD COLUMN reproduced boolean,
  ADD COLUMN totals jsonb,
  ADD COLUMN diff jsonb,
  ADD COLUMN cross_check jsonb,
  ADD COLUMN exceptions_count integer CHECK (exceptions_count >= 0),
  ADD COLUMN statement_bytes bigint CHECK (statement_bytes >= 0),
  ADD COLUMN status_reason text,
  ADD COLUMN reminded_at timestamptz,
  ADD COLUMN escalated boolean NOT NULL DEFAULT false,
  ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE settlement_runs
  ALTER COLUMN origin SET DEFAULT 'workflow',
  ALTER COLUMN started_by DROP DEFAULT,
  ADD FOREIGN KEY (rate_version) REFERENCES royalty_rate_versions,
  ADD FOREIGN KEY (policy_version) REFERENCES royalty_policies,
  -- running → held (exceptions) | awaiting_approval → approved | rejected | superseded | canceled;
  -- verification → verified; correction (of an approved month) → carried_forward when approved.
  ADD CONSTRAINT settlement_runs_status_check CHECK (status IN (
    'running', 'held', 'awaiting_approval', 'approved', 'rejected', 'superseded', 'canceled', 'failed',
    'verified', 'carried_forward')),
  ADD CONSTRAINT settlement_runs_pinned CHECK (
    origin = 'imported' OR (workflow_id IS NOT NULL AND policy_version IS NOT NULL AND code_version IS NOT NULL
                            AND adjustments_through IS NOT NULL)),
  -- Separation of duties: whoever started a run cannot approve it.
  ADD CONSTRAINT settlement_runs_four_eyes CHECK (
    status NOT IN ('approved', 'carried_forward') OR origin = 'imported'
    OR (decided_by IS NOT NULL AND decided_by <> started_by));
-- One approved run per month (its payouts are what was paid), one run computing at a time.
CREATE UNIQUE INDEX settlement_runs_one_approved ON settlement_runs (month) WHERE status = 'approved';
CREATE UNIQUE INDEX settlement_runs_one_running ON settlement_runs (month) WHERE status = 'running';
CREATE UNIQUE INDEX settlement_runs_rerun ON settlement_runs (month, rerun) WHERE origin = 'workflow';
CREATE UNIQUE INDEX settlement_runs_idempotency_key ON settlement_runs (month, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX settlement_runs_supersedes ON settlement_runs (supersedes_run_id);

-- Snapshot: royalty-bearing plays per track and country under the pins. No user IDs (an erasure never
-- needs to reach it); the artist is frozen with it (NULL: a track the catalog does not know).
-- The run is set once per COPY (SET LOCAL cadenza.snapshot_run): ClickHouse's rows go in as they come.
ALTER TABLE settlement_snapshot_lines
  ALTER COLUMN run_id SET DEFAULT current_setting('cadenza.snapshot_run', true)::uuid,
  ALTER COLUMN artist_id DROP NOT NULL,
  ADD COLUMN bot_plays bigint NOT NULL DEFAULT 0 CHECK (bot_plays >= 0),
  ADD COLUMN below_threshold_plays bigint NOT NULL DEFAULT 0 CHECK (below_threshold_plays >= 0);
CREATE INDEX settlement_snapshot_lines_artist ON settlement_snapshot_lines (run_id, artist_id);

-- Lines: the exact amount (plays × rate) and the cents the line receives by the rounding rule.
ALTER TABLE payout_lines RENAME COLUMN amount TO exact_amount;
ALTER TABLE payout_lines ADD COLUMN amount numeric(14, 2);
UPDATE payout_lines SET amount = round(exact_amount, 2);
ALTER TABLE payout_lines
  ALTER COLUMN amount SET NOT NULL,
  ADD CONSTRAINT payout_lines_paid_amount_check CHECK (amount >= 0);

-- Per artist and currency: royalties earned this month (amount) and corrections of earlier approved
-- months carried into it (adjustment, positive or negative); payable = amount + adjustment.
ALTER TABLE artist_payouts
  ADD COLUMN exact_amount numeric(18, 6),
  ADD COLUMN adjustment numeric(14, 2) NOT NULL DEFAULT 0,
  ADD COLUMN lines integer NOT NULL DEFAULT 0 CHECK (lines >= 0);

-- The artist shards of a run whose payouts are written (one transaction each): a retried shard whose
-- transaction committed finds its row and does nothing.
CREATE TABLE settlement_run_shards (
  run_id     uuid NOT NULL REFERENCES settlement_runs,
  shard      integer NOT NULL CHECK (shard >= 0),
  artists    integer NOT NULL CHECK (artists >= 0),
  lines      integer NOT NULL CHECK (lines >= 0),
  held_lines integer NOT NULL CHECK (held_lines >= 0),
  done_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, shard)
);

-- What holds a run (missing rate, unknown track, currency mismatch) and what the approver should see
-- (payment divergence, not holding).
CREATE TABLE settlement_exceptions (
  run_id    uuid NOT NULL REFERENCES settlement_runs,
  kind      text NOT NULL CHECK (kind IN ('missing_rate', 'unknown_track', 'currency_mismatch', 'payment_divergence')),
  subject   text NOT NULL,
  artist_id uuid,
  track_id  uuid,
  country   char(2),
  currency  char(3),
  plays     bigint NOT NULL DEFAULT 0 CHECK (plays >= 0),
  holds     boolean NOT NULL,
  detail    text NOT NULL,
  PRIMARY KEY (run_id, kind, subject)
);

-- A correction of an approved month, approved: the money difference per artist and currency, paid
-- (or recovered) with the next month that has no approved run.
CREATE TABLE settlement_adjustments (
  adjustment_id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  source_run_id    uuid NOT NULL REFERENCES settlement_runs,
  corrected_run_id uuid NOT NULL REFERENCES settlement_runs,
  origin_month     date NOT NULL CHECK (extract(day FROM origin_month) = 1),
  artist_id        uuid NOT NULL,
  currency         char(3) NOT NULL REFERENCES currencies,
  amount           numeric(14, 2) NOT NULL CHECK (amount <> 0),
  target_month     date NOT NULL CHECK (extract(day FROM target_month) = 1 AND target_month > origin_month),
  created_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (source_run_id, artist_id, currency)
);
CREATE INDEX settlement_adjustments_target ON settlement_adjustments (target_month, created_at);

-- An approved run never changes: its row, snapshot, lines, payouts and exceptions are refused every
-- UPDATE and DELETE; a run's pins and statement never change once written; runs are never deleted.
CREATE FUNCTION cadenza_settlement_run_guard() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'settlement runs are never deleted (run %)', OLD.run_id
      USING ERRCODE = 'insufficient_privilege', HINT = 'Reject or supersede the run instead.';
  END IF;
  IF OLD.status IN ('approved', 'carried_forward') THEN
    RAISE EXCEPTION 'settlement run % is approved and cannot change', OLD.run_id
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'Re-run the month: a correction is carried into the next open month.';
  END IF;
  IF (NEW.run_id, NEW.month, NEW.ingestion_cutoff, NEW.rate_version, NEW.policy_version, NEW.code_version,
      NEW.adjustments_through, NEW.origin, NEW.kind, NEW.workflow_id, NEW.rerun, NEW.snapshot_run_id,
      NEW.verifies_run_id, NEW.supersedes_run_id, NEW.started_by, NEW.created_at)
     IS DISTINCT FROM
     (OLD.run_id, OLD.month, OLD.ingestion_cutoff, OLD.rate_version, OLD.policy_version, OLD.code_version,
      OLD.adjustments_through, OLD.origin, OLD.kind, OLD.workflow_id, OLD.rerun, OLD.snapshot_run_id,
      OLD.verifies_run_id, OLD.supersedes_run_id, OLD.started_by, OLD.created_at) THEN
    RAISE EXCEPTION 'the pins of settlement run % are frozen', OLD.run_id USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF OLD.statement_sha256 IS NOT NULL AND NEW.statement_sha256 IS DISTINCT FROM OLD.statement_sha256 THEN
    RAISE EXCEPTION 'the statement of settlement run % is written once', OLD.run_id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER settlement_runs_guard BEFORE UPDATE OR DELETE ON settlement_runs
  FOR EACH ROW EXECUTE FUNCTION cadenza_settlement_run_guard();

CREATE FUNCTION cadenza_settlement_runs_no_truncate() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  RAISE EXCEPTION 'settlement tables are never truncated (%)', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE FUNCTION cadenza_settlement_line_guard() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM settlement_runs WHERE run_id = OLD.run_id AND status IN ('approved', 'carried_forward')) THEN
    RAISE EXCEPTION '% of approved settlement run % cannot change', TG_TABLE_NAME, OLD.run_id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;

-- Rows are added to a run only while it computes (checked per statement: a COPY stays one check).
CREATE FUNCTION cadenza_settlement_line_insert_guard() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  closed uuid;
BEGIN
  SELECT r.run_id INTO closed FROM settlement_runs r
  WHERE r.status IN ('approved', 'carried_forward') AND r.run_id IN (SELECT DISTINCT run_id FROM added)
  LIMIT 1;
  IF closed IS NOT NULL THEN
    RAISE EXCEPTION '% of approved settlement run % cannot change', TG_TABLE_NAME, closed
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NULL;
END
$$;

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['settlement_snapshot_lines', 'payout_lines', 'artist_payouts', 'settlement_exceptions', 'settlement_run_shards'] LOOP
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION cadenza_settlement_line_guard()',
                   t || '_guard', t);
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS added FOR EACH STATEMENT '
                   'EXECUTE FUNCTION cadenza_settlement_line_insert_guard()', t || '_insert_guard', t);
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION cadenza_settlement_runs_no_truncate()',
                   t || '_no_truncate', t);
  END LOOP;
END
$$;
CREATE TRIGGER settlement_runs_no_truncate BEFORE TRUNCATE ON settlement_runs
  FOR EACH STATEMENT EXECUTE FUNCTION cadenza_settlement_runs_no_truncate();

-- Down Migration
DROP TRIGGER settlement_runs_no_truncate ON settlement_runs;
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['settlement_snapshot_lines', 'payout_lines', 'artist_payouts', 'settlement_exceptions', 'settlement_run_shards'] LOOP
    EXECUTE format('DROP TRIGGER %I ON %I', t || '_guard', t);
    EXECUTE format('DROP TRIGGER %I ON %I', t || '_insert_guard', t);
    EXECUTE format('DROP TRIGGER %I ON %I', t || '_no_truncate', t);
  END LOOP;
END
$$;
DROP FUNCTION cadenza_settlement_line_insert_guard();
DROP FUNCTION cadenza_settlement_line_guard();
DROP FUNCTION cadenza_settlement_runs_no_truncate();
DROP TRIGGER settlement_runs_guard ON settlement_runs;
DROP FUNCTION cadenza_settlement_run_guard();
DROP TABLE settlement_adjustments;
DROP TABLE settlement_exceptions;
DROP TABLE settlement_run_shards;
ALTER TABLE artist_payouts DROP COLUMN exact_amount, DROP COLUMN adjustment, DROP COLUMN lines;
ALTER TABLE payout_lines DROP COLUMN amount;
ALTER TABLE payout_lines RENAME COLUMN exact_amount TO amount;
DROP INDEX settlement_snapshot_lines_artist;
ALTER TABLE settlement_snapshot_lines DROP COLUMN bot_plays, DROP COLUMN below_threshold_plays,
  ALTER COLUMN run_id DROP DEFAULT;
DROP INDEX settlement_runs_supersedes;
DROP INDEX settlement_runs_idempotency_key;
DROP INDEX settlement_runs_rerun;
DROP INDEX settlement_runs_one_running;
DROP INDEX settlement_runs_one_approved;
ALTER TABLE settlement_runs
  DROP CONSTRAINT settlement_runs_four_eyes,
  DROP CONSTRAINT settlement_runs_pinned,
  DROP CONSTRAINT settlement_runs_status_check,
  DROP CONSTRAINT settlement_runs_rate_version_fkey,
  DROP CONSTRAINT settlement_runs_policy_version_fkey,
  DROP COLUMN origin, DROP COLUMN kind, DROP COLUMN workflow_id, DROP COLUMN rerun, DROP COLUMN code_version,
  DROP COLUMN adjustments_through, DROP COLUMN snapshot_run_id, DROP COLUMN verifies_run_id,
  DROP COLUMN superseded_by, DROP COLUMN started_by,
  DROP COLUMN reason, DROP COLUMN idempotency_key, DROP COLUMN request_hash, DROP COLUMN snapshot_sha256,
  DROP COLUMN snapshot_lines, DROP COLUMN snapshot_stats, DROP COLUMN reaggregation, DROP COLUMN reproduced,
  DROP COLUMN totals, DROP COLUMN diff, DROP COLUMN cross_check, DROP COLUMN exceptions_count,
  DROP COLUMN statement_bytes, DROP COLUMN status_reason, DROP COLUMN reminded_at, DROP COLUMN escalated,
  DROP COLUMN updated_at,
  ALTER COLUMN policy_version TYPE text USING (coalesce(policy_version::text, 'seed')),
  ALTER COLUMN policy_version SET NOT NULL,
  ADD CONSTRAINT settlement_runs_status_check
    CHECK (status IN ('running', 'awaiting_approval', 'approved', 'rejected', 'superseded', 'failed'));
DROP TRIGGER royalty_policies_no_truncate ON royalty_policies;
DROP TRIGGER royalty_policies_no_update_or_delete ON royalty_policies;
DROP FUNCTION cadenza_royalty_policies_append_only();
DROP TABLE royalty_policies;
DROP TRIGGER royalty_rate_versions_publish_once ON royalty_rate_versions;
DROP FUNCTION cadenza_royalty_rate_versions_publish_once();
DROP TRIGGER royalty_rates_into_open_version ON royalty_rates;
DROP FUNCTION cadenza_royalty_rates_into_open_version();
DROP TRIGGER royalty_rates_no_truncate ON royalty_rates;
DROP TRIGGER royalty_rates_no_update_or_delete ON royalty_rates;
DROP FUNCTION cadenza_royalty_rates_append_only();
DROP INDEX royalty_rates_artist;
ALTER TABLE royalty_rates DROP CONSTRAINT royalty_rates_rate_version_fkey;
ALTER TABLE royalty_rates DROP CONSTRAINT royalty_rates_pkey;
ALTER TABLE royalty_rates ADD PRIMARY KEY (artist_id, country, effective_from);
CREATE INDEX royalty_rates_version ON royalty_rates (rate_version);
DROP TABLE royalty_rate_versions;
