//! Black-box tests of the gateway against the real stack (Kafka, schema
//! registry, PostgreSQL): the app runs in-process on port 0 and the tests
//! speak HTTP, read topics with the Confluent codec and query SQL.

mod admin;
mod bad_input;
mod carts;
mod daily;
mod helpers;
mod hot_path;
mod keys;
mod limits;
mod openapi;
mod ops;
mod registrations;
mod sales;
mod staff;
mod vendor;
