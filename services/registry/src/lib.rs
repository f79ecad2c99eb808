//! MAMOCHI's schema registry: Confluent Schema Registry's REST API for Avro,
//! with its state in a compacted Kafka topic in Confluent's own record
//! format, so that any Confluent client works against it unchanged and
//! production can swap in Confluent's server on the same topic.
//!
//! Layers, each in its own module: [`kafka_log`] (the topic's records),
//! [`store`] (the state those records build, and the records each request
//! must write), [`compatibility`] and [`schema`] (Avro rules), [`kafka_store`]
//! (the topic as a store with read-your-writes, written by one fenced
//! writer), [`election`] (which instance is that writer), `routes` (HTTP) and
//! [`startup`] (the running service), with [`auth`] (HTTP basic auth),
//! [`forward`] (writes go to the writer), [`negotiation`] (media types) and
//! [`metrics`] as middleware, and the operational endpoints beside the API.
//! See [`kafka_store`] and [`election`] for how several instances behave, and
//! `docs/registry.md` for the whole picture.

pub mod auth;
pub mod compatibility;
pub mod election;
pub mod errors;
pub mod forward;
pub mod kafka_log;
pub mod kafka_store;
pub mod metrics;
pub mod negotiation;
mod routes;
pub mod schema;
pub mod startup;
pub mod store;

pub use startup::Application;
