-- Named staff tokens (`mamochi staff add|list|revoke`), checked by the
-- gateway's Staff extractor. Only the SHA-256 of each token is kept: tokens
-- are 256 random bits, so an exact lookup by digest is safe. A name is never
-- reused, not even after revocation, so the name a review recorded always
-- means one person's token.
CREATE TABLE IF NOT EXISTS staff_tokens (
    name         TEXT        PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    token_sha256 TEXT        NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at   TIMESTAMPTZ
);
