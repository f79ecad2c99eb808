DROP INDEX IF EXISTS sale_requests_created_at;
