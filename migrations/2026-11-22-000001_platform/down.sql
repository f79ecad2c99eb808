DROP TABLE emails;
DROP TABLE statements;
DROP TABLE weekly_sales;
DROP TABLE sale_requests;
DROP TABLE carts;
DROP TABLE members;
DROP TABLE registrations;
DROP TABLE processed_events;
