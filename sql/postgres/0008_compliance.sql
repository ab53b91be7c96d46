-- Up Migration
-- Compliance: an append-only audit log the database enforces, GDPR requests, session logs,
-- recommendations, and the play-tick suppression list that GDPR erasure maintains.

CREATE TABLE audit_log (
  audit_id     bigint GENERATED ALWAYS AS IDENTITY,
  occurred_at  timestamptz NOT NULL DEFAULT now(),
  actor        text NOT NULL,
  action       text NOT NULL,
  subject_type text NOT NULL,
  subject_id   text NOT NULL,
  details      jsonb NOT NULL DEFAULT '{}',
  PRIMARY KEY (audit_id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX audit_log_subject ON audit_log (subject_type, subject_id, occurred_at);
SELECT cadenza_partition_by_month('public.audit_log', 'occurred_at');

CREATE FUNCTION cadenza_audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege', HINT = 'Record a new entry instead of changing an old one.';
END
$$;
CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION cadenza_audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION cadenza_audit_log_is_append_only();

CREATE TABLE gdpr_requests (
  request_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      uuid NOT NULL, -- no foreign key: the request outlives the erased user
  kind         text NOT NULL CHECK (kind IN ('erasure', 'export')),
  status       text NOT NULL CHECK (status IN ('received', 'in_progress', 'completed', 'failed')),
  received_at  timestamptz NOT NULL DEFAULT now(),
  due_at       timestamptz NOT NULL,
  completed_at timestamptz,
  proof_key    text,
  CHECK (due_at > received_at)
);
CREATE INDEX gdpr_requests_user ON gdpr_requests (user_id);

CREATE TABLE session_logs (
  session_id uuid NOT NULL DEFAULT gen_random_uuid(),
  started_at timestamptz NOT NULL,
  user_id    uuid NOT NULL,
  ip_country char(2) NOT NULL,
  device_id  text NOT NULL,
  PRIMARY KEY (session_id, started_at)
) PARTITION BY RANGE (started_at);
CREATE INDEX session_logs_user ON session_logs (user_id, started_at);
SELECT cadenza_partition_by_month('public.session_logs', 'started_at');

CREATE TABLE user_recs (
  user_id      uuid PRIMARY KEY REFERENCES users ON DELETE CASCADE,
  recs         jsonb NOT NULL CHECK (jsonb_typeof(recs) = 'array'),
  generated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE play_suppressions (
  user_id    uuid PRIMARY KEY,
  reason     text NOT NULL,
  request_id uuid,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE play_suppressions;
DROP TABLE user_recs;
DROP TABLE session_logs CASCADE;
DELETE FROM partman.part_config WHERE parent_table = 'public.session_logs';
DROP TABLE gdpr_requests;
DROP TABLE audit_log CASCADE;
DELETE FROM partman.part_config WHERE parent_table = 'public.audit_log';
DROP FUNCTION cadenza_audit_log_is_append_only();
