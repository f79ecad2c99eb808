//! Every error the registry answers with, mapped to Confluent's HTTP status,
//! `error_code` and message, in the body `{"error_code": N, "message": "..."}`.
//!
//! Messages of 4xx errors are Confluent's own wording (clients and people
//! match on them); 5xx errors carry an opaque message and their cause goes to
//! the log, never to the client.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::routes::CONTENT_TYPE;

/// The registry's errors, one variant per Confluent error code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    #[error("Version {0} not found.")]
    VersionNotFound(u32),
    #[error("Schema not found")]
    SchemaNotFound,
    #[error("Schema {0} not found")]
    SchemaIdNotFound(u32),
    // Confluent's message really lacks the space after the first full stop.
    #[error("Subject '{0}' was soft deleted.Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    #[error("Subject '{0}' Version {1} was soft deleted.Set permanent=true to delete permanently")]
    VersionSoftDeleted(String, u32),
    #[error("Subject '{0}' Version {1} was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted(String, u32),
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectConfigNotFound(String),
    #[error("{0}")]
    Incompatible(String),
    #[error("{0}")]
    InvalidSchema(String),
    #[error("The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion(String),
    #[error("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")]
    InvalidCompatibility,
    /// A request body or query string that is not what the endpoint expects.
    #[error("{0}")]
    BadRequest(String),
    #[error("HTTP 404 Not Found")]
    NoSuchEndpoint,
    /// A known path asked with a method it does not serve; carries the
    /// `Allow` header's value.
    #[error("HTTP 405 Method Not Allowed")]
    MethodNotAllowed(String),
    /// No media type the registry produces is acceptable to the client.
    #[error("HTTP 406 Not Acceptable")]
    NotAcceptable,
    /// Basic auth is on and the request has no valid credentials.
    #[error("Unauthorized")]
    Unauthorized,
    #[error("Error in the backend data store")]
    Store(#[source] anyhow::Error),
    #[error("Write to the Kafka store timed out")]
    Timeout,
    /// A write while no instance is known to be the writer (an election is
    /// under way), or to an instance that was just deposed. Clients retry.
    #[error("Leader not known")]
    NoWriter,
    /// The writer could not be reached or did not answer. Clients retry.
    #[error("Error while forwarding the request to the leader")]
    Forwarding(#[source] anyhow::Error),
}

/// Confluent's error body.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error_code: u32,
    message: &'a str,
}

impl ApiError {
    /// Confluent's `error_code` for this error.
    pub fn error_code(&self) -> u32 {
        match self {
            Self::SubjectNotFound(_) => 40401,
            Self::VersionNotFound(_) => 40402,
            Self::SchemaNotFound | Self::SchemaIdNotFound(_) => 40403,
            Self::SubjectSoftDeleted(_) => 40404,
            Self::SubjectNotSoftDeleted(_) => 40405,
            Self::VersionSoftDeleted(..) => 40406,
            Self::VersionNotSoftDeleted(..) => 40407,
            Self::SubjectConfigNotFound(_) => 40408,
            // Confluent's incompatibility error code is the bare HTTP status.
            Self::Incompatible(_) => 409,
            Self::InvalidSchema(_) => 42201,
            Self::InvalidVersion(_) => 42202,
            Self::InvalidCompatibility => 42203,
            Self::BadRequest(_) => 400,
            Self::NoSuchEndpoint => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::NotAcceptable => 406,
            Self::Unauthorized => 401,
            Self::Store(_) => 50001,
            Self::Timeout => 50002,
            Self::Forwarding(_) => 50003,
            Self::NoWriter => 50004,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        // Confluent's five-digit codes start with their HTTP status (40401 is a
        // 404); three-digit codes are the status itself.
        // Confluent answers these two with 500; 503 with `Retry-After` makes
        // clients (Confluent's among them) retry until a writer is elected.
        if matches!(self, Self::NoWriter | Self::Forwarding(_)) {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        let code = self.error_code();
        let status = if code >= 10_000 { code / 100 } else { code };
        u16::try_from(status)
            .ok()
            .and_then(|status| StatusCode::from_u16(status).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Store(cause) => tracing::error!(error = format!("{cause:#}"), "backend store failure"),
            Self::Forwarding(cause) => tracing::warn!(error = format!("{cause:#}"), "could not forward a write"),
            _ => {}
        }
        let message = self.to_string();
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::MethodNotAllowed(allow) => {
                response.insert_header((header::ALLOW, allow.as_str()));
            }
            Self::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, crate::auth::CHALLENGE));
            }
            Self::NoWriter | Self::Forwarding(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        response.content_type(CONTENT_TYPE).json(ErrorBody { error_code: self.error_code(), message: &message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_confluent() {
        assert_eq!(ApiError::SubjectNotFound("s".into()).status_code(), StatusCode::NOT_FOUND);
        assert_eq!(ApiError::VersionNotSoftDeleted("s".into(), 1).status_code(), StatusCode::NOT_FOUND);
        assert_eq!(ApiError::Incompatible("x".into()).status_code(), StatusCode::CONFLICT);
        assert_eq!(ApiError::InvalidSchema("x".into()).status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ApiError::InvalidCompatibility.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ApiError::BadRequest("x".into()).status_code(), StatusCode::BAD_REQUEST);
        assert_eq!(ApiError::NoSuchEndpoint.status_code(), StatusCode::NOT_FOUND);
        assert_eq!(ApiError::MethodNotAllowed("GET".into()).status_code(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(ApiError::NotAcceptable.status_code(), StatusCode::NOT_ACCEPTABLE);
        assert_eq!(ApiError::Unauthorized.status_code(), StatusCode::UNAUTHORIZED);
        assert_eq!(ApiError::Timeout.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(ApiError::NoWriter.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ApiError::NoWriter.error_code(), 50004);
        assert_eq!(ApiError::Forwarding(anyhow::anyhow!("x")).status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ApiError::Store(anyhow::anyhow!("x")).status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn messages_are_confluents() {
        assert_eq!(ApiError::SubjectNotFound("orders".into()).to_string(), "Subject 'orders' not found.");
        assert_eq!(ApiError::VersionNotFound(3).to_string(), "Version 3 not found.");
        assert_eq!(ApiError::SchemaIdNotFound(9).to_string(), "Schema 9 not found");
    }
}
