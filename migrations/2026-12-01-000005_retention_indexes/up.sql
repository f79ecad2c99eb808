-- Retention of bookkeeping rows (services/common/src/retention.rs): each
-- pruning pass deletes, in chunks, the rows older than their period, and
-- these indexes keep every chunk an index range scan instead of a scan of
-- tables that grow by one row per event.
--
-- A consumer's dedupe rows, oldest first. processed_at is stamped by now() at
-- insert, so new entries land at the right edge of each consumer's range.
CREATE INDEX IF NOT EXISTS processed_events_by_age ON processed_events (consumer, processed_at);

-- Email rows get a real-time birth stamp: requested_at and sent_at are
-- platform time (a demo runs that clock 2016 times faster from an anchor of
-- its choosing), so they cannot say how long ago, in the broker's time, the
-- request could last have been delivered. Existing rows take the migration's
-- time, which only keeps them longer.
ALTER TABLE emails ADD COLUMN IF NOT EXISTS created_at TIMESTAMPTZ NOT NULL DEFAULT now();

-- Only finished emails are ever pruned; pending ones are still owed.
CREATE INDEX IF NOT EXISTS emails_finished_by_age ON emails (created_at)
    WHERE status IN ('sent', 'failed');
