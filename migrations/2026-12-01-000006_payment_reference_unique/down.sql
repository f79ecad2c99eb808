DROP TABLE IF EXISTS payment_references;
