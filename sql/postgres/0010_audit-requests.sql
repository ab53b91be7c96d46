-- Up Migration
-- Every operator, finance and compliance action leaves one audit entry: who (actor), what (action),
-- which subject, and the API request it came from. Activities that audit a step give the entry a key,
-- so a retried step does not audit twice (a unique index on a partitioned table would need the
-- partition key, so the key is checked on insert, under an advisory lock per key).

ALTER TABLE audit_log
  ADD COLUMN request_id text,
  ADD COLUMN entry_key  text;
CREATE INDEX audit_log_entry_key ON audit_log (entry_key) WHERE entry_key IS NOT NULL;
CREATE INDEX audit_log_action ON audit_log (action, occurred_at);

-- Down Migration
DROP INDEX audit_log_action;
DROP INDEX audit_log_entry_key;
ALTER TABLE audit_log DROP COLUMN entry_key, DROP COLUMN request_id;
