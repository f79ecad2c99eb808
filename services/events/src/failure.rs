//! The one error policy every consumer applies: a failure is either
//! transient (the same record may succeed later: retry it, with backoff, on
//! the same partition position) or permanent (it never will: park it in the
//! dead letters and move on).
//!
//! Guarantee: classification errs towards transient wherever a failure could
//! come from the infrastructure rather than the record — a lost connection,
//! a pool timeout, a serialization failure or deadlock, an administrator
//! shutdown, a broker or registry outage — so an outage never parks a
//! record. Only what the record itself causes is permanent: a constraint
//! violation (the expected dedupe conflicts are `ON CONFLICT DO NOTHING` and
//! never surface as errors), a value PostgreSQL refuses (SQLSTATE class 22,
//! recognised by its message, as diesel reports it as `Unknown`), a row
//! the record needs that does not exist, a record that cannot decode.

use std::fmt::Display;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Stable labels of the `reason` header and of the dead-letter metric.
pub mod reasons {
    /// The handler refused the record (its own rules).
    pub const HANDLER_REJECTED: &str = "handler_rejected";
    /// The record's effect violates a database constraint.
    pub const CONSTRAINT_VIOLATION: &str = "constraint_violation";
    /// The record holds a value the database (or the code) cannot represent.
    pub const INVALID_DATA: &str = "invalid_data";
    /// The record names a vendor who is not a member.
    pub const UNKNOWN_VENDOR: &str = "unknown_vendor";
    /// A row the record needs does not exist.
    pub const NOT_FOUND: &str = "not_found";
}

/// A classified failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Worth retrying: nothing of the effect committed.
    #[error("transient: {0}")]
    Transient(String),
    /// Never going to succeed for this record.
    #[error("{reason}: {detail}")]
    Permanent { reason: &'static str, detail: String },
}

impl Failure {
    pub fn transient(error: impl Display) -> Self {
        Self::Transient(format!("{error:#}"))
    }

    pub fn permanent(reason: &'static str, error: impl Display) -> Self {
        Self::Permanent { reason, detail: format!("{error:#}") }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// Messages of SQLSTATE class 22 (data exception) PostgreSQL reports; the
/// driver gives diesel no code for them, only `Unknown` and this text.
const DATA_EXCEPTIONS: &[&str] = &[
    "out of range",
    "invalid input syntax",
    "invalid byte sequence",
    "value too long",
    "unsupported unicode escape sequence",
    "numeric field overflow",
    "division by zero",
    "invalid input value",
    "character not in repertoire",
];

/// Classifies a diesel error (see the module doc for the policy).
pub fn database(error: &DieselError) -> Failure {
    match error {
        DieselError::DatabaseError(kind, info) => {
            let detail = match info.details() {
                Some(details) => format!("{}: {details}", info.message()),
                None => info.message().to_string(),
            };
            match kind {
                DatabaseErrorKind::UniqueViolation
                | DatabaseErrorKind::ForeignKeyViolation
                | DatabaseErrorKind::NotNullViolation
                | DatabaseErrorKind::CheckViolation
                | DatabaseErrorKind::ExclusionViolation
                | DatabaseErrorKind::RestrictViolation => Failure::permanent(reasons::CONSTRAINT_VIOLATION, detail),
                // Lost or refused connections, serialization failures, a
                // standby that is not yet promoted: the next try may work.
                DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::SerializationFailure
                | DatabaseErrorKind::ReadOnlyTransaction => Failure::transient(detail),
                // `Unknown` covers deadlocks, administrator shutdowns and
                // statement timeouts (transient) as well as data exceptions.
                _ => {
                    let message = info.message().to_ascii_lowercase();
                    if DATA_EXCEPTIONS.iter().any(|pattern| message.contains(pattern)) {
                        Failure::permanent(reasons::INVALID_DATA, detail)
                    } else {
                        Failure::transient(detail)
                    }
                }
            }
        }
        DieselError::RollbackErrorOnCommit { commit_error, .. } => database(commit_error),
        DieselError::NotFound => Failure::permanent(reasons::NOT_FOUND, error),
        DieselError::InvalidCString(_)
        | DieselError::QueryBuilderError(_)
        | DieselError::DeserializationError(_)
        | DieselError::SerializationError(_) => Failure::permanent(reasons::INVALID_DATA, error),
        // Transaction-manager states (rollback, broken manager) reset with
        // a fresh connection.
        _ => Failure::transient(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_string()))
    }

    #[test]
    fn constraint_violations_are_permanent() {
        for kind in [
            DatabaseErrorKind::UniqueViolation,
            DatabaseErrorKind::ForeignKeyViolation,
            DatabaseErrorKind::NotNullViolation,
            DatabaseErrorKind::CheckViolation,
        ] {
            let failure = database(&db(kind, "violates"));
            assert!(matches!(failure, Failure::Permanent { reason: reasons::CONSTRAINT_VIOLATION, .. }), "{kind:?}");
        }
    }

    #[test]
    fn connection_and_concurrency_failures_are_transient() {
        for error in [
            db(DatabaseErrorKind::ClosedConnection, "closed"),
            db(DatabaseErrorKind::UnableToSendCommand, "connection refused"),
            db(DatabaseErrorKind::SerializationFailure, "could not serialize access"),
            db(DatabaseErrorKind::Unknown, "deadlock detected"),
            db(DatabaseErrorKind::Unknown, "terminating connection due to administrator command"),
            DieselError::BrokenTransactionManager,
        ] {
            assert!(database(&error).is_transient(), "{error}");
        }
    }

    #[test]
    fn data_exceptions_are_permanent() {
        let failure = database(&db(DatabaseErrorKind::Unknown, "timestamp out of range: \"-5000-01-01\""));
        assert!(matches!(failure, Failure::Permanent { reason: reasons::INVALID_DATA, .. }));
    }
}
