-- Up Migration
-- Users & subscriptions. Payment methods hold provider tokens only, never card numbers (PCI-DSS).

CREATE TABLE users (
  user_id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email             text NOT NULL,
  display_name      text NOT NULL,
  country           char(2) NOT NULL REFERENCES countries,
  language          text NOT NULL DEFAULT 'en' CHECK (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$'),
  tier              text NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'premium')),
  birth_year        smallint CHECK (birth_year BETWEEN 1900 AND 2100),
  parental_controls boolean NOT NULL DEFAULT false,
  created_at        timestamptz NOT NULL DEFAULT now(),
  erased_at         timestamptz
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_country_tier ON users (country, tier);

CREATE TABLE subscriptions (
  subscription_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id              uuid NOT NULL REFERENCES users,
  plan                 text NOT NULL CHECK (plan ~ '^[a-z][a-z0-9_-]{1,40}$'),
  status               text NOT NULL CHECK (status IN ('trialing', 'active', 'past_due', 'expired', 'canceled')),
  country              char(2) NOT NULL REFERENCES countries,
  currency             char(3) NOT NULL REFERENCES currencies,
  price                numeric(12, 2) NOT NULL CHECK (price >= 0),
  current_period_start timestamptz NOT NULL,
  current_period_end   timestamptz NOT NULL,
  grace_until          timestamptz,
  cancel_at_period_end boolean NOT NULL DEFAULT false,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  CHECK (current_period_end > current_period_start)
);
CREATE INDEX subscriptions_user ON subscriptions (user_id);
CREATE INDEX subscriptions_status_plan_country ON subscriptions (status, plan, country);

CREATE TABLE subscription_history (
  history_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription_id uuid NOT NULL REFERENCES subscriptions,
  from_status     text,
  to_status       text NOT NULL,
  plan            text NOT NULL,
  reason          text NOT NULL,
  changed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscription_history_subscription ON subscription_history (subscription_id, changed_at);

CREATE TABLE payment_methods (
  payment_method_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id           uuid NOT NULL REFERENCES users,
  provider          text NOT NULL,
  provider_token    text NOT NULL CHECK (provider_token !~ '^[0-9 -]{12,19}$'), -- a token, not a card number
  brand             text,
  last4             char(4) CHECK (last4 ~ '^[0-9]{4}$'),
  exp_month         smallint CHECK (exp_month BETWEEN 1 AND 12),
  exp_year          smallint CHECK (exp_year BETWEEN 2000 AND 2100),
  status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'detached')),
  created_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (provider, provider_token)
);
CREATE INDEX payment_methods_user ON payment_methods (user_id);

-- Charges and refunds, partitioned by month. Their idempotency keys are unique across partitions
-- through the small table below (a unique index on a partitioned table must include the partition key).
CREATE TABLE payment_transactions (
  transaction_id     uuid NOT NULL DEFAULT gen_random_uuid(),
  created_at         timestamptz NOT NULL DEFAULT now(),
  user_id            uuid NOT NULL,
  subscription_id    uuid,
  payment_method_id  uuid,
  kind               text NOT NULL CHECK (kind IN ('charge', 'refund')),
  amount             numeric(12, 2) NOT NULL CHECK (amount >= 0),
  currency           char(3) NOT NULL REFERENCES currencies,
  status             text NOT NULL CHECK (status IN ('succeeded', 'declined', 'failed', 'pending')),
  decline_code       text,
  idempotency_key    text NOT NULL,
  provider_reference text,
  PRIMARY KEY (transaction_id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX payment_transactions_subscription ON payment_transactions (subscription_id, created_at);
CREATE INDEX payment_transactions_user ON payment_transactions (user_id, created_at);
SELECT cadenza_partition_by_month('public.payment_transactions', 'created_at');

CREATE TABLE payment_idempotency_keys (
  idempotency_key text PRIMARY KEY CHECK (length(idempotency_key) BETWEEN 8 AND 200),
  transaction_id  uuid NOT NULL,
  created_at      timestamptz NOT NULL
);

-- Down Migration
DROP TABLE payment_idempotency_keys;
DROP TABLE payment_transactions CASCADE;
DELETE FROM partman.part_config WHERE parent_table = 'public.payment_transactions';
DROP TABLE payment_methods;
DROP TABLE subscription_history;
DROP TABLE subscriptions;
DROP TABLE users;
