DROP TABLE IF EXISTS accounting_watermarks;
