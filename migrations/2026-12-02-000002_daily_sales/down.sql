DROP TABLE IF EXISTS daily_summaries;
DROP TABLE IF EXISTS daily_sales;
