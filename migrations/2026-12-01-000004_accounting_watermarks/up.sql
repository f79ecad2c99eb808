-- How far accounting has read each sales partition, per consumer group:
-- the latest sale time applied from it and the offset after the last sale
-- applied. Written in the same transaction as the sales themselves, one
-- multi-row upsert per batch; the closer reads it (with the group's committed
-- offsets and the partitions' high watermarks) to close a week only once
-- every partition has been read past the week's end plus grace.
CREATE TABLE IF NOT EXISTS accounting_watermarks (
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    event_time     timestamptz NOT NULL,
    next_offset    bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
