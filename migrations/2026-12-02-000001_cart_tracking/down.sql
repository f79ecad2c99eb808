DROP INDEX IF EXISTS carts_by_last_sale;
DROP TABLE IF EXISTS cart_incidents;
DROP TABLE IF EXISTS cart_positions;
ALTER TABLE carts DROP COLUMN IF EXISTS last_sale_at;
