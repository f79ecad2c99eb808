-- The platform's tables. Each is written by exactly one service (named in its
-- comment); others read at most. Money is BIGINT Chilean pesos; instants are
-- TIMESTAMPTZ; ids are the UUIDs the events carry.

-- Consumer dedupe: a row per (consumer, event) already applied. Inserted in
-- the same transaction as the event's effect, so a redelivered event is a no-op.
CREATE TABLE processed_events (
    consumer      TEXT        NOT NULL,
    event_id      UUID        NOT NULL,
    processed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Registration forms and their fate (approval writes; gateway reads).
CREATE TABLE registrations (
    registration_id        UUID        PRIMARY KEY,
    full_name              TEXT        NOT NULL,
    rut                    TEXT        NOT NULL,
    email                  TEXT        NOT NULL,
    phone                  TEXT        NOT NULL,
    comuna                 TEXT        NOT NULL,
    cart_plate             TEXT        NOT NULL,
    paid                   BOOLEAN     NOT NULL,
    payment_reference      TEXT,
    tracking_token_sha256  TEXT        NOT NULL,
    status                 TEXT        NOT NULL CHECK (status IN ('received', 'approved', 'rejected', 'manual_review')),
    reason                 TEXT,
    decided_by             TEXT,
    member_id              UUID,
    submitted_at           TIMESTAMPTZ NOT NULL,
    received_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    decided_at             TIMESTAMPTZ
);
CREATE INDEX registrations_by_status ON registrations (status, submitted_at);
CREATE INDEX registrations_by_rut ON registrations (rut);
CREATE INDEX registrations_by_email ON registrations (email);

-- Members and their credentials (approval writes; gateway authenticates with it).
-- Only a SHA-256 of the API key is kept: the key is 128+ random bits, so a
-- fast hash is enough, and lookups by hash are exact.
CREATE TABLE members (
    member_id        UUID        PRIMARY KEY,
    registration_id  UUID        NOT NULL UNIQUE REFERENCES registrations (registration_id),
    full_name        TEXT        NOT NULL,
    rut              TEXT        NOT NULL UNIQUE,
    email            TEXT        NOT NULL UNIQUE,
    phone            TEXT        NOT NULL,
    comuna           TEXT        NOT NULL,
    cart_plate       TEXT        NOT NULL,
    paid             BOOLEAN     NOT NULL,
    api_key_id       TEXT        NOT NULL UNIQUE,
    api_key_sha256   TEXT        NOT NULL UNIQUE,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Each member's cart stock (distributor writes; gateway reads).
CREATE TABLE carts (
    vendor_id          UUID        PRIMARY KEY REFERENCES members (member_id),
    stock              INTEGER     NOT NULL CHECK (stock >= 0),
    low_stock_alerted  BOOLEAN     NOT NULL DEFAULT false,
    restocks           INTEGER     NOT NULL DEFAULT 0,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Idempotency keys of POST /v1/sales (gateway): a repeated key returns the
-- first answer instead of recording the sale again.
CREATE TABLE sale_requests (
    vendor_id        UUID        NOT NULL,
    idempotency_key  TEXT        NOT NULL,
    request_sha256   TEXT        NOT NULL,
    sale_id          UUID        NOT NULL,
    response         JSONB       NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (vendor_id, idempotency_key)
);

-- Per-vendor, per-ISO-week sales aggregates (accounting writes; gateway reads).
CREATE TABLE weekly_sales (
    vendor_id     UUID        NOT NULL,
    iso_week      TEXT        NOT NULL,
    week_start    TIMESTAMPTZ NOT NULL,
    week_end      TIMESTAMPTZ NOT NULL,
    sales_count   BIGINT      NOT NULL DEFAULT 0,
    units         BIGINT      NOT NULL DEFAULT 0,
    earnings_clp  BIGINT      NOT NULL DEFAULT 0,
    closed_at     TIMESTAMPTZ,
    PRIMARY KEY (vendor_id, iso_week)
);

-- Weekly statements, exactly one per vendor and week (accounting writes).
CREATE TABLE statements (
    statement_id        UUID        PRIMARY KEY,
    vendor_id           UUID        NOT NULL,
    iso_week            TEXT        NOT NULL,
    sales_count         BIGINT      NOT NULL,
    units               BIGINT      NOT NULL,
    earnings_clp        BIGINT      NOT NULL,
    average_ticket_clp  BIGINT      NOT NULL,
    issued_at           TIMESTAMPTZ NOT NULL,
    published_at        TIMESTAMPTZ,
    UNIQUE (vendor_id, iso_week)
);

-- Every email the notifier was asked to send, and what became of it.
CREATE TABLE emails (
    message_id    UUID        PRIMARY KEY,
    recipient     TEXT        NOT NULL,
    subject       TEXT        NOT NULL,
    category      TEXT        NOT NULL,
    status        TEXT        NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts      INTEGER     NOT NULL DEFAULT 0,
    last_error    TEXT,
    requested_at  TIMESTAMPTZ NOT NULL,
    sent_at       TIMESTAMPTZ
);
