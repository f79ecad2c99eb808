//! The test kit of the MAMOCHI workspace: one home for what every crate's
//! integration tests need against the real local stack (Kafka, PostgreSQL,
//! the SMTP sink, the schema registry).
//!
//! It is a dev-dependency only, never a dependency of a service: its helpers
//! panic with a message saying what was expected, which is what a test wants
//! and what production code must not do.

pub mod http;
pub mod mail;
pub mod members;
pub mod offsets;
pub mod ports;
pub mod processes;
pub mod records;
pub mod service;
pub mod settings;
pub mod wait;
