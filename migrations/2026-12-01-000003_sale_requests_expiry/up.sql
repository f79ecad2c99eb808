-- The gateway prunes idempotency claims older than their retention (24 h by
-- default) every hour; this index keeps that delete from scanning the table.
CREATE INDEX IF NOT EXISTS sale_requests_created_at ON sale_requests (created_at);
