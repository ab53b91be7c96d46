-- Up Migration
-- Billing that no operator action, provider error or clever listener can break (issue 15).

-- A subscription started but not yet paid (no trial) is `pending`: it holds the user's live slot and
-- grants nothing. The projection carries what the API shows, so reads never ask the workflow.
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_status_check;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_status_check
  CHECK (status IN ('pending', 'trialing', 'active', 'past_due', 'expired', 'canceled'));
ALTER TABLE subscriptions
  -- Grants premium now: a trial, a paid period, or the grace after a paid period (not after a trial).
  ADD COLUMN entitled          boolean NOT NULL DEFAULT false,
  -- The user's one live subscription, unless the plan is an add-on.
  ADD COLUMN exclusive         boolean NOT NULL DEFAULT true,
  ADD COLUMN next_charge_at    timestamptz,
  ADD COLUMN next_charge_minor bigint CHECK (next_charge_minor >= 0),
  ADD COLUMN last_decline_code text,
  ADD COLUMN ended_reason      text,
  -- A charge in flight when the row was written (the API shows it; an update then says what it did).
  ADD COLUMN payment_in_flight boolean NOT NULL DEFAULT false;
UPDATE subscriptions SET entitled = status IN ('trialing', 'active', 'past_due');
CREATE INDEX subscriptions_user_live ON subscriptions (user_id)
  WHERE status IN ('pending', 'trialing', 'active', 'past_due');

-- One trial per user per plan family, written by the workflow when a trial starts. Trials taken before
-- this migration count too (family: the plan's name up to its first hyphen, the catalog's default).
CREATE TABLE subscription_trials (
  user_id         uuid NOT NULL REFERENCES users,
  plan_family     text NOT NULL,
  subscription_id uuid NOT NULL,
  started_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, plan_family)
);
INSERT INTO subscription_trials (user_id, plan_family, subscription_id, started_at)
SELECT DISTINCT ON (s.user_id, split_part(s.plan, '-', 1))
  s.user_id, split_part(s.plan, '-', 1), s.subscription_id, h.changed_at
FROM subscription_history h JOIN subscriptions s USING (subscription_id)
WHERE h.to_status = 'trialing'
ORDER BY s.user_id, split_part(s.plan, '-', 1), h.changed_at
ON CONFLICT DO NOTHING;

-- A refund names the charge it returns (by the charge's idempotency key).
ALTER TABLE payment_transactions ADD COLUMN refund_of text;
CREATE INDEX payment_transactions_reference ON payment_transactions (provider_reference);

-- Idempotency-Keys of API requests, bound to their request: the caller, the route, the user acted for
-- and a SHA-256 of the body. The same key with another request is refused (422). Kept beyond Temporal's
-- retention, so a key never maps onto a new run with an old ID.
CREATE TABLE api_idempotency_keys (
  caller          text NOT NULL,
  route           text NOT NULL,
  idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 100),
  target          text NOT NULL,
  request_sha256  text NOT NULL CHECK (request_sha256 ~ '^[0-9a-f]{64}$'),
  resource_id     text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (caller, route, idempotency_key)
);

-- What billing reconciliation found and did: one row per mismatch (natural key), with its resolution.
CREATE TABLE billing_mismatches (
  mismatch_key    text PRIMARY KEY,
  kind            text NOT NULL CHECK (kind ~ '^[a-z_]+$'),
  subscription_id uuid,
  provider_reference text,
  resolution      text NOT NULL CHECK (resolution IN ('recorded', 'refunded', 'flagged', 'closed', 'adopted')),
  details         jsonb NOT NULL DEFAULT '{}',
  found_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_mismatches_found ON billing_mismatches (found_at);

-- Down Migration
DROP TABLE billing_mismatches;
DROP TABLE api_idempotency_keys;
DROP INDEX payment_transactions_reference;
ALTER TABLE payment_transactions DROP COLUMN refund_of;
DROP TABLE subscription_trials;
DROP INDEX subscriptions_user_live;
ALTER TABLE subscriptions
  DROP COLUMN entitled, DROP COLUMN exclusive, DROP COLUMN next_charge_at, DROP COLUMN next_charge_minor,
  DROP COLUMN last_decline_code, DROP COLUMN ended_reason, DROP COLUMN payment_in_flight;
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_status_check;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_status_check
  CHECK (status IN ('trialing', 'active', 'past_due', 'expired', 'canceled'));
