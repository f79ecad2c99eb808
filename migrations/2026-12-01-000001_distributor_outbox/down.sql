DROP TABLE distributor_outbox;
