//! The gateway: MAMOCHI's public REST API, the only way into the platform.
//!
//! It validates and normalises what clients send ([`domain`]), admits at
//! most a configured number of write requests at once ([`admission`]),
//! refuses clients over their abuse limits with 429 ([`limits`]),
//! authenticates vendors by API key and staff by token ([`auth`]), checks
//! keys and stock against in-memory views ([`views`]), turns accepted
//! requests into events on Kafka and serves reads from the PostgreSQL
//! projections other services maintain ([`store`]). Every error has one shape
//! ([`errors`]); bad input is a 4xx, never a 500.
//!
//! Guarantee: a 2xx answer to a write means its event was acknowledged by
//! Kafka (idempotent producer, `acks=all`); a failure before that is a 503
//! and nothing was recorded, so the client may retry. Retrying a sale with
//! the same `Idempotency-Key` records it at most once. The gateway consumes
//! only to keep its views: cart stock and cart locations ([`views`]); the
//! cart-tracking vocabulary is in [`tracking`].

pub mod admission;
pub mod auth;
pub mod body;
pub mod client_address;
pub mod domain;
pub mod errors;
pub mod lane;
pub mod limits;
pub mod routes;
pub mod startup;
pub mod store;
pub mod tracking;
pub mod views;

pub use startup::{run, Application};
