//! The public registration endpoints: submit a membership form, and read its
//! status with the tracking token the submission returned, sent in the
//! `X-Tracking-Token` header only (a token in the URL would end up in
//! proxies' and servers' access logs; `?token=` is answered 400).
//!
//! A paid form first claims its payment reference (single use, in
//! PostgreSQL: a reference another form holds is answered 409). A form is
//! then published (the event is the source of truth: the approval service
//! decides from it) and inserted into the `registrations` projection so its
//! status is readable at once. A form that could not be published gives its
//! reference back, so the client can retry.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use mamochi_events::publish::PublishError;
use mamochi_events::{topics, RegistrationKey, RegistrationSubmitted};
use mamochi_rules::digest::sha256_hex;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{event_time, PublicUrl};
use crate::body::{FieldError, JsonObject};
use crate::domain::secret::{self, RandomError};
use crate::domain::NewRegistration;
use crate::errors::{ApiError, ToApiError};
use crate::store::registrations::Claim;
use crate::store::{self, StoreError};
use crate::{api_response_error, lane};
use mamochi_events::publish::Publisher;

/// Header that carries the tracking token.
pub const TOKEN_HEADER: &str = "X-Tracking-Token";

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("could not create a tracking token")]
    Random(#[source] RandomError),
    #[error("the payment reference was used by another form")]
    ReferenceUsed,
    #[error("could not claim the payment reference")]
    Claim(#[source] StoreError),
    #[error("could not publish the form")]
    Publish(#[source] PublishError),
}

impl ToApiError for SubmitError {
    fn to_api(&self) -> ApiError {
        match self {
            Self::Invalid(error) => error.clone().into(),
            Self::Random(_) => ApiError::internal(),
            Self::ReferenceUsed => ApiError::new(
                StatusCode::CONFLICT,
                "payment_reference_used",
                "this payment reference was already used by another registration; each payment buys one review",
            )
            .with_field("payment_reference"),
            Self::Claim(_) | Self::Publish(_) => ApiError::unavailable(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("no tracking token")]
    MissingToken,
    #[error("tracking token in the query string")]
    TokenInQuery,
    #[error("unknown registration or wrong token")]
    NotFound,
    #[error("could not read the registration")]
    Store(#[source] StoreError),
}

impl ToApiError for StatusError {
    fn to_api(&self) -> ApiError {
        match self {
            Self::MissingToken => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_token",
                format!("send the tracking token in the {TOKEN_HEADER} header"),
            ),
            Self::TokenInQuery => ApiError::new(
                StatusCode::BAD_REQUEST,
                "token_in_query",
                format!(
                    "the tracking token is not accepted in the URL (?token=); send it in the {TOKEN_HEADER} header"
                ),
            ),
            // Same answer for "no such form" and "wrong token": existence is not revealed.
            Self::NotFound => ApiError::not_found("registration"),
            Self::Store(_) => ApiError::unavailable(),
        }
    }
}

api_response_error!(SubmitError, StatusError);

/// `POST /v1/registrations`.
#[tracing::instrument(skip_all, fields(registration_id, paid, partition))]
pub async fn submit(
    body: web::Json<Map<String, Value>>,
    publisher: web::Data<Publisher>,
    pool: web::Data<PgPool>,
    clock: web::Data<Clock>,
    public_url: web::Data<PublicUrl>,
) -> Result<HttpResponse, SubmitError> {
    let form = NewRegistration::parse(&JsonObject::from(body.into_inner()))?;
    let registration_id = Uuid::new_v4();
    let token = secret::tracking_token().map_err(SubmitError::Random)?;
    let event = RegistrationSubmitted {
        registration_id,
        submitted_at: event_time(clock.now()),
        full_name: form.full_name.as_str().to_string(),
        rut: form.rut.as_str().to_string(),
        email: form.email.as_str().to_string(),
        phone: form.phone.as_str().to_string(),
        comuna: form.comuna.as_str().to_string(),
        cart_plate: form.cart_plate.as_str().to_string(),
        paid: form.paid(),
        payment_reference: form.payment_reference.as_ref().map(|r| r.as_str().to_string()),
        tracking_token_sha256: sha256_hex(&token),
    };
    let partition = lane::partition(event.paid, registration_id, topics::REGISTRATIONS.info.partitions);
    let span = tracing::Span::current();
    span.record("registration_id", tracing::field::display(registration_id));
    span.record("paid", event.paid).record("partition", partition);

    if let Some(reference) = &form.payment_reference {
        match store::registrations::claim_payment_reference(&pool, reference.as_str(), registration_id).await {
            Ok(Claim::Claimed) => {}
            Ok(Claim::Taken) => return Err(SubmitError::ReferenceUsed),
            Err(error) => return Err(SubmitError::Claim(error)),
        }
    }
    let published =
        publisher.send(&topics::REGISTRATIONS, &RegistrationKey { registration_id }, &event, Some(partition)).await;
    if let Err(error) = published {
        if let Some(reference) = &form.payment_reference {
            // The form was not accepted, so its reference must not stay
            // spent. If this fails too, the reference stays claimed by a
            // form nobody will see; staff can delete that row.
            if let Err(release) =
                store::registrations::release_payment_reference(&pool, reference.as_str(), registration_id).await
            {
                tracing::error!(error = %release, "payment reference of an unpublished form not released");
            }
        }
        return Err(SubmitError::Publish(error));
    }
    // The form is durable in Kafka; the approval service will upsert this
    // row from the event even if this insert fails, so a failure here only
    // delays the status page and must not turn an accepted form into an error.
    if let Err(error) = store::registrations::insert_received(&pool, &event).await {
        tracing::warn!(%error, "form published but its status row was not written yet");
    }
    let base = public_url.0.trim_end_matches('/');
    Ok(HttpResponse::Accepted().json(json!({
        "registration_id": registration_id,
        "status_url": format!("{base}/v1/registrations/{registration_id}"),
        "tracking_token": token,
        "status": "received",
    })))
}

/// `GET /v1/registrations/{id}` with the `X-Tracking-Token` header.
#[tracing::instrument(skip_all, fields(registration_id = %path))]
pub async fn status(
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
    request: HttpRequest,
    pool: web::Data<PgPool>,
) -> Result<HttpResponse, StatusError> {
    if query.contains_key("token") {
        return Err(StatusError::TokenInQuery);
    }
    let token = request
        .headers()
        .get(TOKEN_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|token| !token.is_empty())
        .ok_or(StatusError::MissingToken)?;
    let id = Uuid::parse_str(&path).map_err(|_| StatusError::NotFound)?;
    let row = store::registrations::find_status(&pool, id).await.map_err(StatusError::Store)?;
    let row =
        row.filter(|row| secret::matches_digest(token, &row.tracking_token_sha256)).ok_or(StatusError::NotFound)?;
    Ok(HttpResponse::Ok().json(json!({
        "registration_id": row.registration_id,
        "status": row.status,
        "reason": row.reason,
        "paid": row.paid,
        "submitted_at": row.submitted_at,
        "decided_at": row.decided_at,
    })))
}
