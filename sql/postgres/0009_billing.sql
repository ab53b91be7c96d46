-- Up Migration
-- Billing: what the subscription workflow's activities write. Each change carries the workflow's
-- version number, so a retried (older) write never overwrites a newer one, and history rows and
-- outbox messages are written once per change however often the activity runs.

ALTER TABLE subscriptions
  ADD COLUMN payment_method_id uuid REFERENCES payment_methods,
  ADD COLUMN price_minor       bigint CHECK (price_minor >= 0),
  ADD COLUMN period_index      integer NOT NULL DEFAULT 0,
  ADD COLUMN pending_plan      text,
  ADD COLUMN state_version     bigint NOT NULL DEFAULT 0;

ALTER TABLE subscription_history ADD COLUMN version bigint;
CREATE UNIQUE INDEX subscription_history_version ON subscription_history (subscription_id, version)
  WHERE version IS NOT NULL;

-- Messages to users (renewed, payment failed, expired …), written in the same transaction as the change
-- they announce and sent by a relay: IDs and amounts only, the relay looks the person up when it sends.
CREATE TABLE outbox_messages (
  message_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  message_key  text NOT NULL UNIQUE,
  user_id      uuid NOT NULL,
  topic        text NOT NULL CHECK (topic ~ '^[a-z_]+\.[a-z_]+$'),
  payload      jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);
CREATE INDEX outbox_messages_unpublished ON outbox_messages (created_at) WHERE published_at IS NULL;
CREATE INDEX outbox_messages_user ON outbox_messages (user_id);

-- Down Migration
DROP TABLE outbox_messages;
DROP INDEX subscription_history_version;
ALTER TABLE subscription_history DROP COLUMN version;
ALTER TABLE subscriptions
  DROP COLUMN payment_method_id,
  DROP COLUMN price_minor,
  DROP COLUMN period_index,
  DROP COLUMN pending_plan,
  DROP COLUMN state_version;
