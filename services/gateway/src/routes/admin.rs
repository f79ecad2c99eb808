//! Staff endpoints: list forms by status, approve or reject one, revoke or
//! re-issue a vendor's API key. Every one is made by a named staff token,
//! and what it changes records that name: a review is published as
//! `RegistrationReviewed` with `reviewer` = the staff name (the approval
//! service applies it, creating the member or emailing the reason, so these
//! answer 202); key changes are logged with it and return it.
//!
//! Key changes are written by the gateway to `members`' key columns (see
//! [`store::members`]): revocation leaves the member without a working key
//! (204, idempotent); re-issue gives them a new random key and requests a
//! credentials email carrying it sealed, exactly as approval does for a new
//! member ([`mamochi_events::credentials`]), then answers 202. The replaced
//! key is refused at once by this gateway and within the key cache's
//! time-to-live by every other. If the email request fails after the key was
//! replaced, the answer is 503 and staff simply re-issue again: each re-issue
//! makes a new key and only the last one works.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use mamochi_common::seal::{SealError, Sealer};
use mamochi_events::credentials::{self, Occasion, RandomError, Recipient};
use mamochi_events::publish::PublishError;
use mamochi_events::{topics, MessageKey, RegistrationKey, RegistrationReviewed, ReviewDecision};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::event_time;
use crate::api_response_error;
use crate::auth::Staff;
use crate::body::{FieldError, JsonObject};
use crate::domain::{ReviewReason, StatusFilter};
use crate::errors::{ApiError, ToApiError};
use crate::routes::PublicUrl;
use crate::store::{self, StoreError};
use crate::views::KeyDirectory;
use mamochi_events::publish::Publisher;

/// Most forms one listing returns.
const LIST_LIMIT: i64 = 500;
/// Namespace of the message ids of re-issued credentials emails.
const REISSUE_NAMESPACE: Uuid = Uuid::from_u128(0x6d61_6d6f_6368_6b65_7972_6569_7373_7565);

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

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unknown vendor")]
    NotFound,
    #[error("no random source")]
    Random(#[from] RandomError),
    #[error("the key could not be sealed")]
    Seal(#[from] SealError),
    #[error("could not change the key")]
    Store(#[from] StoreError),
    #[error("could not request the credentials email")]
    Publish(#[from] PublishError),
}

impl ToApiError for KeyError {
    fn to_api(&self) -> ApiError {
        match self {
            Self::NotFound => ApiError::not_found("vendor"),
            Self::Random(_) | Self::Seal(_) => ApiError::internal(),
            Self::Store(_) | Self::Publish(_) => ApiError::unavailable(),
        }
    }
}

api_response_error!(ListError, ReviewError, KeyError);

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
#[tracing::instrument(skip_all, fields(registration_id = %path, staff = %staff.name))]
pub async fn approve(
    staff: Staff,
    path: web::Path<String>,
    publisher: web::Data<Publisher>,
    pool: web::Data<PgPool>,
    clock: web::Data<Clock>,
) -> Result<HttpResponse, ReviewError> {
    review(&path, &staff, ReviewDecision::Approve, None, &publisher, &pool, &clock).await
}

/// `POST /v1/admin/registrations/{id}/reject` with `{"reason": "…"}`.
#[tracing::instrument(skip_all, fields(registration_id = %path, staff = %staff.name))]
pub async fn reject(
    staff: Staff,
    path: web::Path<String>,
    body: Result<web::Json<Map<String, Value>>, actix_web::Error>,
    publisher: web::Data<Publisher>,
    pool: web::Data<PgPool>,
    clock: web::Data<Clock>,
) -> Result<HttpResponse, ReviewError> {
    let body = JsonObject::from(body.map_err(ReviewError::Body)?.into_inner());
    let raw: String = body.required("reason")?;
    let reason = ReviewReason::parse(&raw).map_err(|error| FieldError::invalid("reason", error))?;
    review(&path, &staff, ReviewDecision::Reject, Some(reason), &publisher, &pool, &clock).await
}

async fn review(
    id: &str,
    staff: &Staff,
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
        reviewer: staff.name.clone(),
        reviewed_at: event_time(clock.now()),
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

/// `DELETE /v1/admin/vendors/{vendor_id}/key`: the vendor's key stops
/// working; 204 also when it was revoked already.
#[tracing::instrument(skip_all, fields(vendor_id = %path, staff = %staff.name))]
pub async fn revoke_key(
    staff: Staff,
    path: web::Path<String>,
    pool: web::Data<PgPool>,
    keys: web::Data<KeyDirectory>,
) -> Result<HttpResponse, KeyError> {
    let vendor_id = Uuid::parse_str(&path).map_err(|_| KeyError::NotFound)?;
    let change = store::members::revoke_key(&pool, vendor_id).await?.ok_or(KeyError::NotFound)?;
    keys.forget(&change.old_sha256).await;
    tracing::info!(staff = %staff.name, %vendor_id, "staff revoked a vendor's API key");
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/admin/vendors/{vendor_id}/key`: a new key for the vendor, sent
/// by email; the old one (if any) stops working.
#[tracing::instrument(skip_all, fields(vendor_id = %path, staff = %staff.name))]
#[allow(clippy::too_many_arguments)] // one actix extractor per shared resource
pub async fn reissue_key(
    staff: Staff,
    path: web::Path<String>,
    pool: web::Data<PgPool>,
    keys: web::Data<KeyDirectory>,
    sealer: web::Data<Sealer>,
    publisher: web::Data<Publisher>,
    public_url: web::Data<PublicUrl>,
    clock: web::Data<Clock>,
) -> Result<HttpResponse, KeyError> {
    let vendor_id = Uuid::parse_str(&path).map_err(|_| KeyError::NotFound)?;
    let key = credentials::generate()?;
    let sealed = sealer.seal(&key.clear)?;
    let change =
        store::members::replace_key(&pool, vendor_id, &key.key_id, &key.sha256).await?.ok_or(KeyError::NotFound)?;
    keys.forget(&change.old_sha256).await;
    // Derived from the new key: a repeat of this request is the same email.
    let message_id = Uuid::new_v5(&REISSUE_NAMESPACE, key.sha256.as_bytes());
    let email = credentials::email_request(
        message_id,
        Occasion::Reissued,
        Recipient { email: &change.email, full_name: &change.full_name },
        &public_url.0,
        sealed,
        clock.now(),
    );
    publisher.send(&topics::EMAIL_REQUESTS, &MessageKey { message_id }, &email, None).await?;
    tracing::info!(staff = %staff.name, %vendor_id, key_id = %key.key_id, "staff re-issued a vendor's API key");
    Ok(HttpResponse::Accepted().json(json!({
        "vendor_id": vendor_id,
        "key_id": key.key_id,
        "email_message_id": message_id,
        "issued_by": staff.name,
    })))
}
