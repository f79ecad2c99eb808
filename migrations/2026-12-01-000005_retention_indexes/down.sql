DROP INDEX IF EXISTS emails_finished_by_age;
ALTER TABLE emails DROP COLUMN IF EXISTS created_at;
DROP INDEX IF EXISTS processed_events_by_age;
