//! Why applying an event failed, and whether retrying can help: the
//! distributor's half of the platform's one error policy.

use mamochi_events::failure::{self, reasons, Failure};
use mamochi_events::runner::HandlerError;

use crate::outbox::OutboxError;
use crate::rules::RuleError;
use crate::store::StoreError;

/// Everything that can abort a handler's transaction (which then rolls back).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("could not write a derived record to the outbox: {0}")]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("no database connection: {0}")]
    Pool(String),
}

impl ApplyError {
    /// The platform's error policy ([`mamochi_events::failure`]) applied to
    /// the distributor: an unknown vendor, an impossible quantity or stock,
    /// a constraint violation or a value PostgreSQL refuses never succeeds
    /// and is parked; a lost connection, a pool timeout, a serialization
    /// failure or deadlock, an unavailable broker is retried.
    pub fn failure(&self) -> Failure {
        match self {
            ApplyError::Store(StoreError::UnknownVendor(_)) => Failure::permanent(reasons::UNKNOWN_VENDOR, self),
            ApplyError::Rule(_) => Failure::permanent(reasons::INVALID_DATA, self),
            ApplyError::Store(StoreError::Db(error))
            | ApplyError::Db(error)
            | ApplyError::Outbox(OutboxError::Db(error)) => failure::database(error),
            // A derived record that cannot be written as JSON is the sale's
            // doing; an unreadable outbox row is a relay matter, retried.
            ApplyError::Outbox(OutboxError::Json(_)) => Failure::permanent(reasons::INVALID_DATA, self),
            ApplyError::Outbox(_) | ApplyError::Pool(_) => Failure::transient(self),
        }
    }
}

impl From<ApplyError> for HandlerError {
    /// Permanent failures park the record; transient ones are retried.
    fn from(error: ApplyError) -> Self {
        HandlerError::from(error.failure())
    }
}
