-- Up Migration
-- GDPR erasure (Art. 17) and export (Art. 15/20): the requests with who asked, why, the deadline and its
-- extension (Art. 12(3)); per-store progress and proof; the lists that stop a person's new data (tokens
-- refused, play-ticks dropped) and the versions of them each running API and sink has loaded.

ALTER TABLE gdpr_requests
  ADD COLUMN requester        text NOT NULL DEFAULT 'unknown',
  -- A code, never free text: the request's reason travels through workflow histories.
  ADD COLUMN reason           text,
  ADD COLUMN workflow_id      text,
  -- A second request while one is open for the same user and kind joins it (its status is that one's).
  ADD COLUMN joined_request_id uuid REFERENCES gdpr_requests,
  ADD COLUMN extended_due_at  timestamptz,
  ADD COLUMN extension_reason text,
  ADD COLUMN escalated_at     timestamptz,
  ADD COLUMN updated_at       timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN outcome          text,
  ADD COLUMN failure_reason   text,
  ADD COLUMN certificate_sha256 text CHECK (certificate_sha256 ~ '^[0-9a-f]{64}$'),
  ADD COLUMN export_key       text,
  ADD COLUMN export_sha256    text CHECK (export_sha256 ~ '^[0-9a-f]{64}$'),
  ADD COLUMN export_bytes     bigint CHECK (export_bytes >= 0),
  ADD CONSTRAINT gdpr_requests_extension CHECK (extended_due_at IS NULL OR (extended_due_at > due_at AND extension_reason IS NOT NULL)),
  ADD CONSTRAINT gdpr_requests_outcome CHECK (outcome IS NULL OR outcome IN ('erased', 'exported', 'nothing_left', 'unknown_user', 'canceled'));
ALTER TABLE gdpr_requests DROP CONSTRAINT gdpr_requests_status_check;
ALTER TABLE gdpr_requests ADD CONSTRAINT gdpr_requests_status_check
  CHECK (status IN ('received', 'in_progress', 'verifying', 'completed', 'escalated', 'failed', 'joined'));
CREATE UNIQUE INDEX gdpr_requests_one_open ON gdpr_requests (user_id, kind)
  WHERE status IN ('received', 'in_progress', 'verifying', 'escalated');
CREATE INDEX gdpr_requests_status ON gdpr_requests (status, received_at);

-- One row per request and store: what was found and removed (counts only), verification, attempts.
CREATE TABLE gdpr_request_stores (
  request_id  uuid NOT NULL REFERENCES gdpr_requests,
  store       text NOT NULL CHECK (store IN ('postgres', 'clickhouse', 'opensearch', 'minio', 'kafka', 'auth', 'subscriptions', 'payments')),
  status      text NOT NULL CHECK (status IN ('pending', 'working', 'done', 'verified', 'residue', 'exported')),
  -- The counts seen before the first deletion; a retried step keeps them.
  found       jsonb,
  residue     jsonb,
  attempts    integer NOT NULL DEFAULT 0,
  last_error  text,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  verified_at timestamptz,
  PRIMARY KEY (request_id, store)
);

-- Writers of the two lists take their table's lock, so versions commit in order: a reader that has seen
-- version N has seen every version below it.
CREATE SEQUENCE erasure_list_version;

-- Token subjects the API refuses, whatever it remembers of their tokens.
CREATE TABLE denied_subjects (
  subject    text PRIMARY KEY,
  version    bigint NOT NULL DEFAULT nextval('erasure_list_version') UNIQUE,
  reason     text NOT NULL,
  request_id uuid,
  denied_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE play_suppressions ADD COLUMN version bigint;
UPDATE play_suppressions SET version = nextval('erasure_list_version');
ALTER TABLE play_suppressions
  ALTER COLUMN version SET DEFAULT nextval('erasure_list_version'),
  ALTER COLUMN version SET NOT NULL,
  ADD CONSTRAINT play_suppressions_version_key UNIQUE (version);

-- What each running API (denied_subjects) and sink (play_suppressions) holds: the version it has loaded
-- and applies to everything it still has in hand. A holder reports every few seconds; one silent for
-- longer is not running.
CREATE TABLE list_holders (
  holder_id   text NOT NULL,
  list        text NOT NULL CHECK (list IN ('denied_subjects', 'play_suppressions')),
  version     bigint NOT NULL,
  started_at  timestamptz NOT NULL DEFAULT now(),
  reported_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (holder_id, list)
);

-- Erasure looks people up by these columns.
CREATE INDEX playlist_tracks_added_by ON playlist_tracks (added_by) WHERE added_by IS NOT NULL;
CREATE INDEX ad_impressions_user ON ad_impressions (user_id, shown_at);

-- Down Migration
DROP INDEX ad_impressions_user;
DROP INDEX playlist_tracks_added_by;
DROP TABLE list_holders;
ALTER TABLE play_suppressions DROP CONSTRAINT play_suppressions_version_key, DROP COLUMN version;
DROP TABLE denied_subjects;
DROP SEQUENCE erasure_list_version;
DROP TABLE gdpr_request_stores;
DROP INDEX gdpr_requests_status;
DROP INDEX gdpr_requests_one_open;
ALTER TABLE gdpr_requests DROP CONSTRAINT gdpr_requests_status_check;
ALTER TABLE gdpr_requests ADD CONSTRAINT gdpr_requests_status_check
  CHECK (status IN ('received', 'in_progress', 'completed', 'failed'));
ALTER TABLE gdpr_requests
  DROP CONSTRAINT gdpr_requests_outcome,
  DROP CONSTRAINT gdpr_requests_extension,
  DROP COLUMN export_bytes, DROP COLUMN export_sha256, DROP COLUMN export_key, DROP COLUMN certificate_sha256,
  DROP COLUMN failure_reason, DROP COLUMN outcome, DROP COLUMN updated_at, DROP COLUMN escalated_at,
  DROP COLUMN extension_reason, DROP COLUMN extended_due_at, DROP COLUMN joined_request_id,
  DROP COLUMN workflow_id, DROP COLUMN reason, DROP COLUMN requester;
