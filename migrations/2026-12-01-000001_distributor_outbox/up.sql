-- The distributor's outbox (Debezium's outbox pattern): records derived from
-- a stock change (stock events, email requests, the cart's new level) are
-- written here in the same transaction as the change and produced to Kafka
-- after the commit, in `seq` order, then deleted. A row still here after a
-- crash is produced by the relay when the distributor starts again.
CREATE TABLE distributor_outbox (
    seq         BIGSERIAL   PRIMARY KEY,
    kind        TEXT        NOT NULL,
    record      JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
