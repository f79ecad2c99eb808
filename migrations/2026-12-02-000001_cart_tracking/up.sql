-- Cart tracking (distributor writes; gateway and tests read): when each cart
-- last sold, where it last was, and its incidents (missing, silent, out of
-- area). Every member has a carts row (approval creates it with the member,
-- the distributor creates a missing one on the first sale), so the last sale
-- is a column of carts.
ALTER TABLE carts ADD COLUMN last_sale_at TIMESTAMPTZ;

-- The newest position of each cart (a LOCATION ping, or a sale's location).
-- A position older than the stored one never replaces it.
CREATE TABLE cart_positions (
    vendor_id    UUID             PRIMARY KEY REFERENCES members (member_id),
    latitude     DOUBLE PRECISION NOT NULL,
    longitude    DOUBLE PRECISION NOT NULL,
    accuracy_m   DOUBLE PRECISION,
    occurred_at  TIMESTAMPTZ      NOT NULL,
    updated_at   TIMESTAMPTZ      NOT NULL DEFAULT now()
);

-- One row per incident. An incident is opened (RAISED) by inserting its row
-- and closed (CLEARED) by setting cleared_at; the alarm records and emails of
-- either step are written to distributor_outbox in the same transaction.
CREATE TABLE cart_incidents (
    incident_id          UUID             PRIMARY KEY,
    vendor_id            UUID             NOT NULL REFERENCES members (member_id),
    cause                TEXT             NOT NULL CHECK (cause IN ('REPORTED_MISSING', 'SILENT', 'OUT_OF_AREA')),
    -- The tracking event that opened it (none for SILENT, which a timer opens).
    opened_by_event_id   UUID,
    evidence_at          TIMESTAMPTZ      NOT NULL,
    opened_at            TIMESTAMPTZ      NOT NULL,
    latitude             DOUBLE PRECISION,
    longitude            DOUBLE PRECISION,
    distance_m           DOUBLE PRECISION,
    detail               TEXT             NOT NULL,
    cleared_by_event_id  UUID,
    cleared_evidence_at  TIMESTAMPTZ,
    cleared_at           TIMESTAMPTZ,
    CHECK ((cleared_at IS NULL) = (cleared_evidence_at IS NULL))
);
-- At most one open incident per cart and cause: what makes "one alarm per
-- incident" hold across redeliveries, restarts and concurrent instances
-- (opening is INSERT … ON CONFLICT DO NOTHING against this index).
CREATE UNIQUE INDEX cart_incidents_one_open ON cart_incidents (vendor_id, cause) WHERE cleared_at IS NULL;
CREATE INDEX cart_incidents_by_vendor ON cart_incidents (vendor_id, opened_at);
-- The silence check looks only at carts that sold recently.
CREATE INDEX carts_by_last_sale ON carts (last_sale_at) WHERE last_sale_at IS NOT NULL;
