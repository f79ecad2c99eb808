DROP TABLE IF EXISTS staff_tokens;
