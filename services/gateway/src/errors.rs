//! The one error shape of the API, `{"error": {"code", "message", "field"}}`,
//! and the configuration that makes every failure take it: bodies actix
//! refuses (malformed JSON → 400, too large → 413), unknown routes (404),
//! wrong methods (405) and anything else that would leave without a JSON body.
//!
//! 4xx carry a message meant for the client; 5xx are opaque ("internal") and
//! their cause goes to the log.

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use crate::body::FieldError;

/// An error as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<&'static str>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None }
    }

    pub fn with_field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// A server-side failure: opaque to the client (the cause goes to the log
    /// through [`log_cause`]).
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; please retry later")
    }

    /// A dependency (Kafka, PostgreSQL) did not answer: retrying later helps.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service is temporarily unavailable; please retry",
        )
    }

    /// Over capacity: the request was refused before any work, retry soon.
    pub fn overloaded() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the gateway is at capacity; retry after the time in Retry-After",
        )
    }

    pub fn response(&self) -> HttpResponse {
        envelope(self.status, self.code, &self.message, self.field)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        self.response()
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, error.code, error.message).with_field(error.field)
    }
}

/// The envelope an extractor's error carries (the `JsonConfig` handler makes
/// them [`ApiError`]s); any other error keeps its status.
pub fn from_actix(error: &actix_web::Error) -> ApiError {
    error.as_error::<ApiError>().cloned().unwrap_or_else(|| {
        let status = error.as_response_error().status_code();
        ApiError::new(status, "invalid_request", status.canonical_reason().unwrap_or("invalid request"))
    })
}

/// Logs a server-side failure with its whole cause chain.
pub fn log_cause(error: &dyn std::error::Error) {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(next) = source {
        chain.push_str(": ");
        chain.push_str(&next.to_string());
        source = next.source();
    }
    tracing::error!(error = %chain, "request failed");
}

/// A handler's error enum: says what the client sees.
pub trait ToApiError: std::error::Error {
    fn to_api(&self) -> ApiError;
}

/// Maps a handler's error enum to HTTP through [`ToApiError`]; 5xx causes are logged.
#[macro_export]
macro_rules! api_response_error {
    ($($error:ty),+ $(,)?) => {$(
        impl actix_web::ResponseError for $error {
            fn status_code(&self) -> actix_web::http::StatusCode {
                $crate::errors::ToApiError::to_api(self).status
            }

            fn error_response(&self) -> actix_web::HttpResponse {
                let api = $crate::errors::ToApiError::to_api(self);
                if api.status.is_server_error() {
                    $crate::errors::log_cause(self);
                }
                api.response()
            }
        }
    )+};
}

/// What every 503 tells clients to wait before retrying, in seconds.
pub const RETRY_AFTER_SECS: &str = "1";

/// Builds an error response in the envelope.
pub fn envelope(status: StatusCode, code: &str, message: &str, field: Option<&str>) -> HttpResponse {
    let mut response = HttpResponse::build(status).json(Envelope { error: Detail { code, message, field } });
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // Every 503 is worth retrying; say when (RFC 9110, section 10.2.3).
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    response
}

/// Classifies a body the `Json` extractor refused.
pub fn json_error(error: &JsonPayloadError, limit: usize) -> ApiError {
    match error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body must not exceed {limit} bytes"),
        ),
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON (Content-Type: application/json)",
        ),
        JsonPayloadError::Deserialize(error) => serde_error(error),
        JsonPayloadError::Payload(actix_web::error::PayloadError::Overflow) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body must not exceed {limit} bytes"),
        ),
        other => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body could not be read: {other}"))
        }
    }
}

/// Syntax errors are malformed JSON (400); data errors (a body that is not
/// an object, say) are 422 with the field when serde's message names one
/// ("missing field `rut`", "unknown field `x`").
pub fn serde_error(error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Data => {
            let message = error.to_string();
            let api = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("the body is not valid: {message}"),
            );
            match field_in_message(&message) {
                Some(field) => ApiError { code: "invalid_value", ..api }.with_field(field),
                None => api,
            }
        }
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {error}"))
        }
    }
}

/// Known request fields, so a field named in serde's message maps to a
/// `&'static str` (and an attacker-chosen name is never echoed as a field).
const KNOWN_FIELDS: &[&str] = &[
    "full_name",
    "rut",
    "email",
    "phone",
    "comuna",
    "cart_plate",
    "paid",
    "payment_reference",
    "quantity",
    "unit_price_clp",
    "payment_method",
    "occurred_at",
    "reason",
    "note",
];

fn field_in_message(message: &str) -> Option<&'static str> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    let name = &message[start..end];
    KNOWN_FIELDS.iter().copied().find(|known| *known == name)
}

/// `JsonConfig` for every JSON route: size limit and the envelope on failure.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .content_type_required(false)
        .error_handler(move |error, _request: &HttpRequest| json_error(&error, limit).into())
}

/// `PayloadConfig` for routes that read raw bytes (an optional JSON body).
pub fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(limit)
}

/// `QueryConfig`: a query string that does not parse is a 422.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error: QueryPayloadError, _request: &HttpRequest| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            format!("the query string is not valid: {error}"),
        )
        .into()
    })
}

/// Default service: an unknown route is a JSON 404. A known path asked with
/// another method lands here too (a resource without a default service
/// falls back to the app's), recognisable by its matched pattern: 405.
pub async fn route_not_found(request: HttpRequest) -> HttpResponse {
    let (status, code) = match request.match_pattern() {
        Some(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        None => (StatusCode::NOT_FOUND, "route_not_found"),
    };
    envelope(status, code, &format!("no route {} {}", request.method(), request.path()), None)
}

/// Rewrites any error response that is not already JSON (405 from the router,
/// 413 from a raw-payload extractor, …) into the envelope.
pub fn enveloped_errors<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|response: ServiceResponse<B>| {
        let is_json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
        if is_json {
            return Ok(ErrorHandlerResponse::Response(response.map_into_left_body()));
        }
        let status = response.status();
        let code = match status {
            StatusCode::NOT_FOUND => "route_not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            status if status.is_server_error() => "internal",
            _ => "bad_request",
        };
        let message = status.canonical_reason().unwrap_or("error");
        let (request, _) = response.into_parts();
        let replaced: HttpResponse<EitherBody<B, BoxBody>> =
            envelope(status, code, message, None).map_into_right_body();
        Ok(ErrorHandlerResponse::Response(ServiceResponse::new(request, replaced)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_are_malformed_json_and_data_errors_name_known_fields() {
        let syntax = serde_json::from_str::<serde_json::Value>("{\"a\":").expect_err("eof");
        assert_eq!(serde_error(&syntax).status, StatusCode::BAD_REQUEST);
        assert_eq!(serde_error(&syntax).code, "malformed_json");

        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Needs {
            rut: String,
        }
        let missing = serde_json::from_str::<Needs>("{}").expect_err("missing rut");
        let api = serde_error(&missing);
        assert_eq!((api.status, api.field), (StatusCode::UNPROCESSABLE_ENTITY, Some("rut")));

        let not_an_object =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>("[1]").expect_err("array");
        assert_eq!(
            (serde_error(&not_an_object).status, serde_error(&not_an_object).field),
            (StatusCode::UNPROCESSABLE_ENTITY, None)
        );
    }

    #[test]
    fn overflow_is_413() {
        let error = JsonPayloadError::OverflowKnownLength { length: 20_000, limit: 16_384 };
        assert_eq!(json_error(&error, 16_384).status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
