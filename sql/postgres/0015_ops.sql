-- Up Migration
-- Operations: what the scheduled jobs need (update times for incremental dimension refreshes, their
-- watermarks and run records, the backup catalogue and restore drills) and the outbox's delivery state.

-- Rows that feed ClickHouse's dimensions carry the time they last changed, kept by the database itself so
-- no writer can forget it: the dimension refresh copies what changed since its last watermark.
CREATE FUNCTION cadenza_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$;

ALTER TABLE users ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE ad_campaigns ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE TRIGGER users_touch_updated_at BEFORE UPDATE ON users
  FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION cadenza_touch_updated_at();
CREATE TRIGGER tracks_touch_updated_at BEFORE UPDATE ON tracks
  FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION cadenza_touch_updated_at();
CREATE TRIGGER ad_campaigns_touch_updated_at BEFORE UPDATE ON ad_campaigns
  FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION cadenza_touch_updated_at();
CREATE INDEX users_updated_at ON users (updated_at);
CREATE INDEX tracks_updated_at ON tracks (updated_at);
CREATE INDEX ad_campaigns_updated_at ON ad_campaigns (updated_at);
CREATE INDEX users_erased_at ON users (erased_at) WHERE erased_at IS NOT NULL;

-- How far an incremental job has read (e.g. the dimension refresh: rows changed up to this instant).
CREATE TABLE ops_watermarks (
  name       text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_.-]{1,80}$'),
  value      timestamptz NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per run of a scheduled job, keyed by its business key (the workflow ID): the operators' record
-- and the source of the job metrics (last success, last failure) whatever Temporal still retains.
CREATE TABLE ops_job_runs (
  run_key     text PRIMARY KEY,
  job         text NOT NULL CHECK (job ~ '^[a-z][a-z0-9-]{1,60}$'),
  status      text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  summary     jsonb NOT NULL DEFAULT '{}',
  error       text
);
CREATE INDEX ops_job_runs_job ON ops_job_runs (job, started_at DESC);

-- The backup catalogue: a backup is complete when its manifest (objects, sizes, SHA-256, and the source's
-- row counts and checksums) is in the bucket and its row here says so. Expired backups keep their row.
CREATE TABLE backups (
  backup_id       text PRIMARY KEY CHECK (backup_id ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{4}Z$'),
  status          text NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'expired')),
  started_at      timestamptz NOT NULL DEFAULT now(),
  completed_at    timestamptz,
  bucket          text NOT NULL,
  manifest_key    text NOT NULL,
  manifest_sha256 text CHECK (manifest_sha256 ~ '^[0-9a-f]{64}$'),
  bytes           bigint CHECK (bytes >= 0),
  summary         jsonb NOT NULL DEFAULT '{}',
  expired_at      timestamptz
);
CREATE INDEX backups_completed ON backups (completed_at DESC) WHERE status = 'completed';

-- Restore drills: the latest backup restored into scratch databases and compared with the source's
-- counts and checksums recorded in its manifest. A failed drill says which check failed and why.
CREATE TABLE restore_drills (
  drill_id    text PRIMARY KEY,
  backup_id   text REFERENCES backups,
  -- canceled: ended without a verdict (an operator's cancellation, or the run itself failed).
  status      text NOT NULL CHECK (status IN ('running', 'passed', 'failed', 'canceled')),
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  checks      integer NOT NULL DEFAULT 0 CHECK (checks >= 0),
  failures    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(failures) = 'array')
);
CREATE INDEX restore_drills_finished ON restore_drills (finished_at DESC);

-- The outbox's delivery state. A relay leases a batch (lease_until), delivers each message with its
-- message_key as the idempotency key, then marks it published; a failure waits next_attempt_at (backoff)
-- and after the configured attempts the message is dead-lettered (dead_at) for an operator to look at.
ALTER TABLE outbox_messages
  ADD COLUMN attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN lease_until     timestamptz,
  ADD COLUMN last_error      text,
  ADD COLUMN dead_at         timestamptz;
CREATE INDEX outbox_messages_due ON outbox_messages (next_attempt_at, message_id)
  WHERE published_at IS NULL AND dead_at IS NULL;
CREATE INDEX outbox_messages_dead ON outbox_messages (dead_at) WHERE dead_at IS NOT NULL;

-- Down Migration
DROP INDEX outbox_messages_dead;
DROP INDEX outbox_messages_due;
ALTER TABLE outbox_messages
  DROP COLUMN dead_at, DROP COLUMN last_error, DROP COLUMN lease_until, DROP COLUMN next_attempt_at,
  DROP COLUMN attempts;
DROP TABLE restore_drills;
DROP TABLE backups;
DROP TABLE ops_job_runs;
DROP TABLE ops_watermarks;
DROP INDEX users_erased_at;
DROP INDEX ad_campaigns_updated_at;
DROP INDEX tracks_updated_at;
DROP INDEX users_updated_at;
DROP TRIGGER ad_campaigns_touch_updated_at ON ad_campaigns;
DROP TRIGGER tracks_touch_updated_at ON tracks;
DROP TRIGGER users_touch_updated_at ON users;
ALTER TABLE ad_campaigns DROP COLUMN updated_at;
ALTER TABLE users DROP COLUMN updated_at;
DROP FUNCTION cadenza_touch_updated_at();
