//! Shared plumbing for the MAMOCHI services.
//!
//! Everything here is infrastructure, not business: how a service reads its
//! settings, logs, talks to Kafka and PostgreSQL, and stops. Services depend on
//! this crate so that every one of them behaves the same way on those points.

pub mod clock;
pub mod config;
pub mod db;
pub mod db_tls;
pub mod dedupe;
pub mod http_metrics;
pub mod kafka;
pub mod kafka_metrics;
pub mod ops;
pub mod ports;
pub mod retention;
pub mod seal;
/// Diesel's description of the tables, generated from `migrations/` by
/// `diesel print-schema` (see `diesel.toml`); never edited by hand.
#[rustfmt::skip]
pub mod schema;
pub mod shutdown;
pub mod telemetry;

pub use config::Settings;
