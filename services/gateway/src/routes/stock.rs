//! `POST /v1/stock/depletions`: a vendor reports running out. Produced as a
//! `StockEvent` of kind DEPLETED (keyed by vendor); the distributor restocks.

use actix_web::{web, HttpResponse};
use mamochi_common::clock::Clock;
use mamochi_events::publish::PublishError;
use mamochi_events::{topics, StockEvent, StockEventKind, VendorKey};
use serde_json::{json, Value};
use uuid::Uuid;

use super::event_time;
use crate::admission::Admitted;
use crate::api_response_error;
use crate::auth::Vendor;
use crate::body::{FieldError, JsonObject};
use crate::errors::{ApiError, ToApiError};
use mamochi_events::publish::Publisher;

/// What the event records as the depletion's cause.
pub const REASON: &str = "reported by vendor";

#[derive(Debug, thiserror::Error)]
pub enum DepletionError {
    #[error("the body is not valid JSON")]
    Malformed(#[source] serde_json::Error),
    #[error("the body is not a JSON object")]
    NotAnObject,
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("could not publish the depletion")]
    Publish(#[source] PublishError),
}

impl ToApiError for DepletionError {
    fn to_api(&self) -> ApiError {
        match self {
            Self::Malformed(error) => crate::errors::serde_error(error),
            Self::NotAnObject => ApiError::new(
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "the body must be a JSON object such as {\"note\": \"…\"}",
            ),
            Self::Invalid(error) => error.clone().into(),
            Self::Publish(_) => ApiError::unavailable(),
        }
    }
}

api_response_error!(DepletionError);

/// The optional body: nothing, or `{"note": "…"}` (at most 500 characters).
fn parse_note(bytes: &[u8]) -> Result<Option<String>, DepletionError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(DepletionError::Malformed)?;
    let Value::Object(map) = value else {
        return Err(DepletionError::NotAnObject);
    };
    let note: Option<String> = JsonObject::from(map).optional("note")?;
    match note {
        Some(note) if note.chars().count() > 500 => {
            Err(FieldError::invalid("note", "must be at most 500 characters").into())
        }
        note => Ok(note),
    }
}

/// `POST /v1/stock/depletions`.
#[tracing::instrument(skip_all, fields(vendor_id = %vendor.vendor_id, event_id))]
pub async fn deplete(
    _admitted: Admitted,
    vendor: Vendor,
    body: web::Bytes,
    publisher: web::Data<Publisher>,
    clock: web::Data<Clock>,
) -> Result<HttpResponse, DepletionError> {
    let note = parse_note(&body)?;
    let event = StockEvent {
        event_id: Uuid::new_v4(),
        vendor_id: vendor.vendor_id,
        kind: StockEventKind::Depleted,
        quantity: 0,
        stock_after: 0,
        reason: Some(REASON.to_string()),
        occurred_at: event_time(clock.now()),
    };
    tracing::Span::current().record("event_id", tracing::field::display(event.event_id));
    if let Some(note) = &note {
        // Free text from a vendor may hold anyone's personal data: its
        // length is logged, never its words.
        tracing::info!(note_chars = note.chars().count(), "vendor note on a depletion");
    }
    publisher
        .send(&topics::STOCK, &VendorKey { vendor_id: vendor.vendor_id }, &event, None)
        .await
        .map_err(DepletionError::Publish)?;
    Ok(HttpResponse::Accepted().json(json!({ "event_id": event.event_id })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_optional_but_must_be_valid_when_present() {
        assert!(matches!(parse_note(b""), Ok(None)));
        assert!(matches!(parse_note(b"{\"note\": \"sin huesillos\"}"), Ok(Some(note)) if note == "sin huesillos"));
        assert!(matches!(parse_note(b"{\"note\": "), Err(DepletionError::Malformed(_))));
        assert!(matches!(parse_note(b"{\"note\": 3}"), Err(DepletionError::Invalid(e)) if e.field == "note"));
    }
}
