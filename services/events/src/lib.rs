//! The platform's event contracts.
//!
//! Every type in [`generated`] comes from an Avro schema in `schemas/` (see
//! `build.rs`); [`topics`] names every topic with its key and value types;
//! [`codec`] reads and writes Confluent's wire format through the schema
//! registry; [`credentials`] makes API keys and their credentials email;
//! [`dead_letter`] parks records that cannot be decoded and
//! [`consume`] is the decode-or-park step every consumer runs; [`failure`]
//! classifies handler errors as transient or permanent, [`poller`] retries
//! the transient ones while the consumer keeps polling and isolates the
//! poison records of a batch; [`runner`] is the at-least-once loop around
//! them, [`batch`] the steps the batched loops share, and [`lanes`] the
//! priority lane of a laned topic.

pub mod batch;
pub mod codec;
pub mod consume;
pub mod credentials;
pub mod dead_letter;
pub mod failure;
pub mod lanes;
pub mod poller;
pub mod publish;
pub mod runner;
pub mod topics;

/// Rust types generated from `schemas/*.avsc` at build time.
// rsgen-avro 0.19 writes apache-avro 0.21 paths, which 0.22 deprecates but keeps.
#[allow(clippy::all, missing_docs, missing_debug_implementations, deprecated)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/events.rs"));
}

pub use generated::*;

/// Where a type's Avro schema comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaSource {
    /// File name under `schemas/`.
    pub file: &'static str,
    /// The record's full name (namespace and name).
    pub full_name: &'static str,
    /// The file's raw text: this exact string is what gets registered.
    pub text: &'static str,
}

/// A type generated from a schema in `schemas/`, which knows that schema.
pub trait AvroSchemaSource {
    const SCHEMA: SchemaSource;
}
