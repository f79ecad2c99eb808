-- The approval service commits a decision first and publishes its events
-- (decision, credentials, email request) right after. These columns let a
-- redelivered form finish a publication that a crash interrupted.

-- When the decision's events were acknowledged by Kafka; NULL = still to publish.
ALTER TABLE registrations ADD COLUMN published_at TIMESTAMPTZ;

-- The new API key, sealed with the email key (never in clear text), kept only
-- until the credentials email request is acknowledged, then set to NULL.
ALTER TABLE members ADD COLUMN pending_credentials BYTEA;
