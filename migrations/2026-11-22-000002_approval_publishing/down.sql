ALTER TABLE members DROP COLUMN pending_credentials;
ALTER TABLE registrations DROP COLUMN published_at;
