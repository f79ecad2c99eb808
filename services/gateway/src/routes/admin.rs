//! Staff endpoints: list forms by status, approve or reject one. A review is
//! published as `RegistrationReviewed`; the approval service applies it
//! (creating the member, or emailing the reason), so these answer 202.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use mamochi_events::publish::PublishError;
use mamochi_events::{topics, RegistrationKey, RegistrationReviewed, ReviewDecision};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::registrations::millis;
use crate::api_response_error;
use crate::auth::Staff;
use crate::body::{FieldError, JsonObject};
use crate::domain::{ReviewReason, StatusFilter};
use crate::errors::{ApiError, ToApiError};
use crate::store::{self, StoreError};
use mamochi_events::publish::Publisher;

/// Most forms one listing returns.
const LIST_LIMIT: i64 = 500;
/// Who a staff review is attributed to.
const REVIEWER: &str = "staff";

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("could not list registrations")]
    Store(#[source] StoreError),
}

impl ToApiError for ListError {
    fn to_api(&self) -> ApiError {
        match self {
            Self::Invalid(error) => error.clone().into(),
            Self::Store(_) => ApiError::unavailable(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("the body could not be read")]
    Body(#[source] actix_web::Error),
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("unknown registration")]
    NotFound,
    #[error("the registration is already {0}")]
    AlreadyDecided(String),
    #[error("could not read the registration")]
    Store(#[source] StoreError),
    #[error("could not publish the review")]
    Publish(#[source] PublishError),
}

impl ToApiError for ReviewError {
    fn to_api(&self) -> ApiError {
        match self {
            Self::Body(error) => crate::errors::from_actix(error),
            Self::Invalid(error) => error.clone().into(),
            Self::NotFound => ApiError::not_found("registration"),
            Self::AlreadyDecided(status) => {
                ApiError::new(StatusCode::CONFLICT, "already_decided", format!("the registration is already {status}"))
            }
            Self::Store(_) | Self::Publish(_) => ApiError::unavailable(),
        }
    }
}

api_response_error!(ListError, ReviewError);

/// `GET /v1/admin/registrations?status=pending`.
#[tracing::instrument(skip_all)]
pub async fn list(
    _staff: Staff,
    query: web::Query<HashMap<String, String>>,
    pool: web::Data<PgPool>,
) -> Result<HttpResponse, ListError> {
    let filter = StatusFilter::parse(query.get("status").map_or("pending", String::as_str))
        .map_err(|error| FieldError::invalid("status", error))?;
    let rows = store::registrations::list(&pool, filter.statuses(), LIST_LIMIT).await.map_err(ListError::Store)?;
    let registrations: Vec<Value> = rows
        .into_iter()
        .map(|row| {
            json!({
                "registration_id": row.registration_id,
                "full_name": row.full_name,
                "rut": row.rut,
                "email": row.email,
                "phone": row.phone,
                "comuna": row.comuna,
                "cart_plate": row.cart_plate,
                "paid": row.paid,
                "payment_reference": row.payment_reference,
                "status": row.status,
                "reason": row.reason,
                "submitted_at": row.submitted_at,
                "decided_at": row.decided_at,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "registrations": registrations })))
}

/// `POST /v1/admin/registrations/{id}/approve`.
#[tracing::instrument(skip_all, fields(registration_id = %path))]
pub async fn approve(
    _staff: Staff,
    path: web::Path<String>,
    publisher: web::Data<Publisher>,
    pool: web::Data<PgPool>,
    clock: web::Data<Clock>,
) -> Result<HttpResponse, ReviewError> {
    review(&path, ReviewDecision::Approve, None, &publisher, &pool, &clock).await
}

/// `POST /v1/admin/registrations/{id}/reject` with `{"reason": "…"}`.
#[tracing::instrument(skip_all, fields(registration_id = %path))]
pub async fn reject(
    _staff: Staff,
    path: web::Path<String>,
    body: Result<web::Json<Map<String, Value>>, actix_web::Error>,
    publisher: web::Data<Publisher>,
    pool: web::Data<PgPool>,
    clock: web::Data<Clock>,
) -> Result<HttpResponse, ReviewError> {
    let body = JsonObject::from(body.map_err(ReviewError::Body)?.into_inner());
    let raw: String = body.required("reason")?;
    let reason = ReviewReason::parse(&raw).map_err(|error| FieldError::invalid("reason", error))?;
    review(&path, ReviewDecision::Reject, Some(reason), &publisher, &pool, &clock).await
}

async fn review(
    id: &str,
    decision: ReviewDecision,
    reason: Option<ReviewReason>,
    publisher: &Publisher,
    pool: &PgPool,
    clock: &Clock,
) -> Result<HttpResponse, ReviewError> {
    let registration_id = Uuid::parse_str(id).map_err(|_| ReviewError::NotFound)?;
    match store::registrations::status_of(pool, registration_id).await.map_err(ReviewError::Store)? {
        None => return Err(ReviewError::NotFound),
        Some(status) if status == "approved" || status == "rejected" => {
            return Err(ReviewError::AlreadyDecided(status))
        }
        Some(_) => {}
    }
    let event = RegistrationReviewed {
        review_id: Uuid::new_v4(),
        registration_id,
        decision,
        reason: reason.map(|r| r.as_str().to_string()),
        reviewer: REVIEWER.to_string(),
        reviewed_at: millis(clock.now()),
    };
    publisher
        .send(&topics::REGISTRATION_REVIEWS, &RegistrationKey { registration_id }, &event, None)
        .await
        .map_err(ReviewError::Publish)?;
    Ok(HttpResponse::Accepted().json(json!({
        "review_id": event.review_id,
        "registration_id": registration_id,
        "decision": if decision == ReviewDecision::Approve { "approve" } else { "reject" },
        "status": "accepted",
    })))
}
