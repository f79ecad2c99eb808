//! Conformance tests: the registry, running against the real Kafka, replays
//! the request/response pairs of Confluent Schema Registry's API reference.

mod helpers;

mod auth;
mod compatibility;
mod config;
mod converter;
mod deletes;
mod interop;
mod metrics;
mod restart;
mod schemas;
mod subjects;
mod two_instances;
