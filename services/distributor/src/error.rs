//! Why applying an event failed, and whether retrying can help.

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

impl From<ApplyError> for HandlerError {
    /// An unknown vendor or an impossible quantity never becomes valid: the
    /// record is parked. Everything else (database, outbox) is retried.
    fn from(error: ApplyError) -> Self {
        match error {
            ApplyError::Store(StoreError::UnknownVendor(_)) | ApplyError::Rule(_) => {
                HandlerError::Rejected(error.to_string())
            }
            other => HandlerError::Transient(anyhow::Error::new(other)),
        }
    }
}
