//! Cart tracking: a vendor reports where its cart is
//! (`POST /v1/carts/me/locations`) and reads it back
//! (`GET /v1/carts/me/location`); a vendor reports its own cart missing or
//! found (`POST /v1/carts/me/reports`) and staff do so for any cart
//! (`POST /v1/admin/carts/{vendor_id}/reports`) and list every cart with its
//! last location (`GET /v1/admin/carts`).
//!
//! Writes are `CartTrackingEvent`s on `mamochi.cart-tracking`, keyed by
//! vendor (one cart each). Reports go to the report lane (partition 0) and
//! nothing else does; pings are spread over the other partitions by cart
//! ([`crate::lane`]), so a report is read before any backlog of pings and
//! one cart's pings stay in order. Reads come from the in-memory
//! [`CartView`], which follows the topic: a ping answered 202 shows there
//! moments later. A 202 means Kafka acknowledged the event.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use mamochi_events::publish::{PublishError, Publisher};
use mamochi_events::{topics, CartTrackingEvent, CartTrackingEventKind, VendorKey};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::event_time;
use crate::admission::Admitted;
use crate::auth::{Staff, Vendor};
use crate::body::{FieldError, JsonObject};
use crate::errors::{ApiError, ToApiError};
use crate::store::{self, StoreError};
use crate::tracking::{NewLocation, NewReport};
use crate::views::carts::{CartState, Position};
use crate::views::CartView;
use crate::{api_response_error, lane};

/// What `reported_by` says for an event the vendor sent.
pub const REPORTED_BY_VENDOR: &str = "vendor";
/// Page size of `GET /v1/admin/carts` when none is asked for.
pub const DEFAULT_PER_PAGE: usize = 50;
/// Largest page size of `GET /v1/admin/carts`.
pub const MAX_PER_PAGE: usize = 100;

/// `gateway.location_max_age_secs`: the oldest ping accepted.
#[derive(Debug, Clone, Copy)]
pub struct LocationMaxAge(pub chrono::Duration);

#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error("the body could not be read")]
    Body(#[source] actix_web::Error),
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("no location known for this cart")]
    NoLocation,
    #[error("unknown vendor")]
    UnknownVendor,
    #[error("could not read the member")]
    Store(#[source] StoreError),
    #[error("could not publish the cart-tracking event")]
    Publish(#[source] PublishError),
}

impl ToApiError for TrackingError {
    fn to_api(&self) -> ApiError {
        match self {
            Self::Body(error) => crate::errors::from_actix(error),
            Self::Invalid(error) => error.clone().into(),
            Self::NoLocation => {
                ApiError::new(StatusCode::NOT_FOUND, "no_location", "this cart has not reported a location yet")
            }
            Self::UnknownVendor => ApiError::not_found("vendor"),
            Self::Store(_) | Self::Publish(_) => ApiError::unavailable(),
        }
    }
}

api_response_error!(TrackingError);

/// `POST /v1/carts/me/locations`.
#[tracing::instrument(skip_all, fields(vendor_id = %vendor.vendor_id, event_id))]
pub async fn record_location(
    _admitted: Admitted,
    vendor: Vendor,
    body: Result<web::Json<Map<String, Value>>, actix_web::Error>,
    publisher: web::Data<Publisher>,
    clock: web::Data<Clock>,
    max_age: web::Data<LocationMaxAge>,
) -> Result<HttpResponse, TrackingError> {
    let body = JsonObject::from(body.map_err(TrackingError::Body)?.into_inner());
    let location = NewLocation::parse(&body, clock.now(), max_age.0)?;
    let event = CartTrackingEvent {
        event_id: Uuid::new_v4(),
        vendor_id: vendor.vendor_id,
        kind: CartTrackingEventKind::Location,
        occurred_at: location.occurred_at,
        latitude: Some(location.latitude),
        longitude: Some(location.longitude),
        accuracy_m: Some(location.accuracy_m),
        note: None,
        reported_by: REPORTED_BY_VENDOR.to_string(),
    };
    publish(&publisher, &event, false).await
}

/// `GET /v1/carts/me/location`.
#[tracing::instrument(skip_all, fields(vendor_id = %vendor.vendor_id))]
pub async fn location(
    vendor: Vendor,
    view: web::Data<CartView>,
    clock: web::Data<Clock>,
) -> Result<HttpResponse, TrackingError> {
    let position = view.cart(vendor.vendor_id).and_then(|state| state.position).ok_or(TrackingError::NoLocation)?;
    Ok(HttpResponse::Ok().json(position_json(&position, clock.now())))
}

/// `POST /v1/carts/me/reports`.
#[tracing::instrument(skip_all, fields(vendor_id = %vendor.vendor_id, event_id))]
pub async fn report(
    _admitted: Admitted,
    vendor: Vendor,
    body: Result<web::Json<Map<String, Value>>, actix_web::Error>,
    publisher: web::Data<Publisher>,
    clock: web::Data<Clock>,
) -> Result<HttpResponse, TrackingError> {
    let body = JsonObject::from(body.map_err(TrackingError::Body)?.into_inner());
    let report = NewReport::parse(&body)?;
    publish_report(&publisher, vendor.vendor_id, report, REPORTED_BY_VENDOR, clock.now()).await
}

/// `POST /v1/admin/carts/{vendor_id}/reports`.
#[tracing::instrument(skip_all, fields(vendor_id = %path, staff = %staff.name, event_id))]
pub async fn staff_report(
    staff: Staff,
    path: web::Path<String>,
    body: Result<web::Json<Map<String, Value>>, actix_web::Error>,
    publisher: web::Data<Publisher>,
    pool: web::Data<PgPool>,
    clock: web::Data<Clock>,
) -> Result<HttpResponse, TrackingError> {
    let vendor_id = Uuid::parse_str(&path).map_err(|_| TrackingError::UnknownVendor)?;
    let body = JsonObject::from(body.map_err(TrackingError::Body)?.into_inner());
    let report = NewReport::parse(&body)?;
    if store::members::profile(&pool, vendor_id).await.map_err(TrackingError::Store)?.is_none() {
        return Err(TrackingError::UnknownVendor);
    }
    publish_report(&publisher, vendor_id, report, &staff.name, clock.now()).await
}

/// `GET /v1/admin/carts?page=1&per_page=50`: every cart the view knows, by
/// vendor id, one page at a time.
#[tracing::instrument(skip_all, fields(staff = %staff.name))]
pub async fn list(
    staff: Staff,
    query: web::Query<HashMap<String, String>>,
    view: web::Data<CartView>,
    clock: web::Data<Clock>,
) -> Result<HttpResponse, TrackingError> {
    let page = page_number(query.get("page"), "page", 1, usize::MAX)?;
    let per_page = page_number(query.get("per_page"), "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)?;
    let carts = view.all();
    let total = carts.len();
    let now = clock.now();
    let listed: Vec<Value> = carts
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|(vendor_id, state)| cart_json(*vendor_id, state, now))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "carts": listed, "page": page, "per_page": per_page, "total": total })))
}

/// A page parameter: absent → `default`, else an integer in `1..=max`.
fn page_number(raw: Option<&String>, field: &'static str, default: usize, max: usize) -> Result<usize, FieldError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.parse::<usize>() {
        Ok(value) if (1..=max).contains(&value) => Ok(value),
        _ if max == usize::MAX => Err(FieldError::invalid(field, "must be a whole number of at least 1")),
        _ => Err(FieldError::invalid(field, format!("must be a whole number from 1 to {max}"))),
    }
}

async fn publish_report(
    publisher: &Publisher,
    vendor_id: Uuid,
    report: NewReport,
    reported_by: &str,
    now: DateTime<Utc>,
) -> Result<HttpResponse, TrackingError> {
    if let Some(note) = &report.note {
        // Free text may hold anyone's personal data: its length is logged,
        // never its words.
        tracing::info!(note_chars = note.chars().count(), "note on a cart report");
    }
    let event = CartTrackingEvent {
        event_id: Uuid::new_v4(),
        vendor_id,
        kind: report.kind,
        occurred_at: event_time(now),
        latitude: None,
        longitude: None,
        accuracy_m: None,
        note: report.note,
        reported_by: reported_by.to_string(),
    };
    publish(publisher, &event, true).await
}

/// Publishes on the report lane (`report`) or the cart's ping partition.
async fn publish(
    publisher: &Publisher,
    event: &CartTrackingEvent,
    report: bool,
) -> Result<HttpResponse, TrackingError> {
    tracing::Span::current().record("event_id", tracing::field::display(event.event_id));
    let partition = lane::partition(report, event.vendor_id, topics::CART_TRACKING.info.partitions);
    publisher
        .send(&topics::CART_TRACKING, &VendorKey { vendor_id: event.vendor_id }, event, Some(partition))
        .await
        .map_err(TrackingError::Publish)?;
    Ok(HttpResponse::Accepted().json(json!({ "event_id": event.event_id })))
}

/// A position and its age in whole seconds (0 for a ping stamped within
/// the allowed skew ahead of the platform clock).
fn position_json(position: &Position, now: DateTime<Utc>) -> Value {
    json!({
        "latitude": position.latitude,
        "longitude": position.longitude,
        "accuracy_m": position.accuracy_m,
        "occurred_at": position.occurred_at,
        "age_secs": (now - position.occurred_at).num_seconds().max(0),
    })
}

fn cart_json(vendor_id: Uuid, state: &CartState, now: DateTime<Utc>) -> Value {
    json!({
        "vendor_id": vendor_id,
        "missing": state.missing,
        "location": state.position.map(|position| position_json(&position, now)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_numbers_default_and_stay_in_range() {
        let raw = |s: &str| Some(s.to_string());
        assert_eq!(page_number(None, "per_page", 50, 100), Ok(50));
        assert_eq!(page_number(raw("100").as_ref(), "per_page", 50, 100), Ok(100));
        assert_eq!(page_number(raw("101").as_ref(), "per_page", 50, 100).map_err(|e| e.field), Err("per_page"));
        assert_eq!(page_number(raw("0").as_ref(), "page", 1, usize::MAX).map_err(|e| e.field), Err("page"));
        assert_eq!(page_number(raw("-1").as_ref(), "page", 1, usize::MAX).map_err(|e| e.field), Err("page"));
    }

    #[test]
    fn the_age_of_a_position_is_never_negative() {
        let now = Utc::now();
        let position = Position {
            latitude: -33.4,
            longitude: -70.6,
            accuracy_m: 5.0,
            occurred_at: now + chrono::Duration::seconds(30),
        };
        assert_eq!(position_json(&position, now)["age_secs"], 0);
        let position = Position { occurred_at: now - chrono::Duration::seconds(90), ..position };
        assert_eq!(position_json(&position, now)["age_secs"], 90);
    }
}
