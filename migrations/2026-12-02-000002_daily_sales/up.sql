-- Each vendor's sales per local day and hour in America/Santiago (the 23:00
-- hour of a day whose clocks go back is one row holding both occurrences; a
-- day whose clocks go forward has no hour 0). Accounting fills it in the
-- same transaction as weekly_sales, one multi-row upsert per batch of sales,
-- so a sale is in it exactly once. A day counts its sales by when they
-- happened: a late sale (its week already closed) is still in its own day.
CREATE TABLE IF NOT EXISTS daily_sales (
    vendor_id    uuid     NOT NULL,
    local_date   date     NOT NULL,
    local_hour   smallint NOT NULL CHECK (local_hour BETWEEN 0 AND 23),
    sales        bigint   NOT NULL DEFAULT 0,
    units        bigint   NOT NULL DEFAULT 0,
    earnings_clp bigint   NOT NULL DEFAULT 0,
    PRIMARY KEY (vendor_id, local_date, local_hour)
);

-- The closer's scan for days to summarise goes by date.
CREATE INDEX IF NOT EXISTS daily_sales_local_date ON daily_sales (local_date);

-- The daily summary of each vendor and day with sales, once the day is over
-- (accounting.daily_summary): stored with its figures when the day closes,
-- emailed once (published_at set only after Kafka acknowledged the email
-- request, whose message id is derived from vendor and date).
CREATE TABLE IF NOT EXISTS daily_summaries (
    vendor_id    uuid        NOT NULL,
    local_date   date        NOT NULL,
    sales        bigint      NOT NULL,
    units        bigint      NOT NULL,
    earnings_clp bigint      NOT NULL,
    busiest_hour smallint,
    closed_at    timestamptz NOT NULL,
    published_at timestamptz,
    PRIMARY KEY (vendor_id, local_date)
);

CREATE INDEX IF NOT EXISTS daily_summaries_unpublished ON daily_summaries (closed_at) WHERE published_at IS NULL;
