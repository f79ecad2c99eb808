//! `POST /v1/sales`: a vendor records a sale. The sale is produced as
//! `SaleRecorded` (keyed by vendor) once it passes validation and the stock
//! rule; accounting and the distributor consume it.
//!
//! Idempotency: with an `Idempotency-Key`, the key is claimed in
//! `sale_requests` before producing (see [`crate::store::sale_requests`]), so
//! a repeated key records nothing and returns the first answer; the same key
//! with a different body is refused.
//!
//! Stock rule: a sale larger than the cart's current stock is refused (409).
//! The check reads the distributor's projection, so two concurrent sales can
//! both pass it; the distributor then clamps the stock at zero and restocks.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use mamochi_events::publish::PublishError;
use mamochi_events::{topics, SaleRecorded, VendorKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::registrations::millis;
use crate::api_response_error;
use crate::auth::Vendor;
use crate::body::{FieldError, JsonObject};
use crate::domain::{secret, IdempotencyKey, NewSale, PaymentMethod};
use crate::errors::{ApiError, ToApiError};
use crate::store::sale_requests::{self, Claim, DONE};
use crate::store::StoreError;
use mamochi_events::publish::Publisher;

pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// A pending claim older than this is presumed abandoned by a crashed
/// gateway: longer than a produce can take (`message.timeout.ms` defaults to 120 s).
const STALE_CLAIM_SECS: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum SaleError {
    #[error("the body could not be read")]
    Body(#[source] actix_web::Error),
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("only {stock} servings in stock")]
    InsufficientStock { stock: i32 },
    #[error("the idempotency key was used with another body")]
    KeyReused,
    #[error("a request with this idempotency key is still being processed")]
    KeyInFlight,
    #[error("the stored answer of an idempotency key is unreadable")]
    CorruptClaim,
    #[error("database")]
    Store(#[source] StoreError),
    #[error("could not publish the sale")]
    Publish(#[source] PublishError),
}

impl ToApiError for SaleError {
    fn to_api(&self) -> ApiError {
        match self {
            Self::Body(error) => crate::errors::from_actix(error),
            Self::Invalid(error) => error.clone().into(),
            Self::InsufficientStock { stock } => ApiError::new(
                StatusCode::CONFLICT,
                "insufficient_stock",
                format!("the cart has {stock} servings; report a depletion to be restocked"),
            )
            .with_field("quantity"),
            Self::KeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different body",
            )
            .with_field("Idempotency-Key"),
            Self::KeyInFlight => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_flight",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            )
            .with_field("Idempotency-Key"),
            Self::CorruptClaim => ApiError::internal(),
            Self::Store(_) | Self::Publish(_) => ApiError::unavailable(),
        }
    }
}

api_response_error!(SaleError);

/// The answer to a recorded sale; also what an idempotency claim stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleAnswer {
    pub sale_id: Uuid,
    pub vendor_id: Uuid,
    pub quantity: i32,
    pub unit_price_clp: i64,
    pub total_clp: i64,
    pub payment_method: String,
    pub occurred_at: DateTime<Utc>,
}

impl SaleAnswer {
    fn event(&self, recorded_at: DateTime<Utc>) -> Result<SaleRecorded, SaleError> {
        let method = PaymentMethod::parse(&self.payment_method).map_err(|_| SaleError::CorruptClaim)?;
        Ok(SaleRecorded {
            sale_id: self.sale_id,
            vendor_id: self.vendor_id,
            quantity: self.quantity,
            unit_price_clp: self.unit_price_clp,
            total_clp: self.total_clp,
            payment_method: method.to_event(),
            occurred_at: self.occurred_at,
            recorded_at,
        })
    }
}

/// Digest of the request as parsed (field order and spacing do not matter;
/// an absent `occurred_at` stays absent, so a retry matches).
fn request_digest(sale: &NewSale) -> String {
    let canonical = json!({
        "quantity": sale.quantity.get(),
        "unit_price_clp": sale.unit_price_clp.get(),
        "payment_method": sale.payment_method.as_str(),
        "occurred_at": sale.occurred_at.map(|t| t.timestamp_millis()),
    });
    secret::sha256_hex(&canonical.to_string())
}

/// `POST /v1/sales`.
#[tracing::instrument(skip_all, fields(vendor_id = %vendor.vendor_id, sale_id))]
pub async fn record(
    vendor: Vendor,
    body: Result<web::Json<Map<String, Value>>, actix_web::Error>,
    request: HttpRequest,
    publisher: web::Data<Publisher>,
    pool: web::Data<PgPool>,
    clock: web::Data<Clock>,
) -> Result<HttpResponse, SaleError> {
    let body = JsonObject::from(body.map_err(SaleError::Body)?.into_inner());
    let now = millis(clock.now());
    let sale = NewSale::parse(&body, now)?;
    let key = match request.headers().get(IDEMPOTENCY_HEADER) {
        None => None,
        Some(value) => Some(
            IdempotencyKey::parse(value.to_str().unwrap_or("\u{7f}"))
                .map_err(|error| FieldError::invalid("Idempotency-Key", error))?,
        ),
    };
    let digest = request_digest(&sale);
    let vendor_id = vendor.vendor_id;

    let answer = SaleAnswer {
        sale_id: Uuid::new_v4(),
        vendor_id,
        quantity: sale.quantity.get(),
        unit_price_clp: sale.unit_price_clp.get(),
        total_clp: sale.total_clp(),
        payment_method: sale.payment_method.as_str().to_string(),
        occurred_at: sale.occurred_at.unwrap_or(now),
    };
    tracing::Span::current().record("sale_id", tracing::field::display(answer.sale_id));
    let stored = serde_json::to_value(&answer).map_err(|_| SaleError::CorruptClaim)?;
    if let Some(key) = &key {
        // Claim first: a new key, the usual case, costs one write; only a
        // key already on record (a repeat, or a concurrent twin) is read, and
        // answered from its claim whatever the stock is now.
        let claimed = sale_requests::claim(&pool, vendor_id, key.as_str(), &digest, answer.sale_id, &stored)
            .await
            .map_err(SaleError::Store)?;
        if !claimed {
            let claim = sale_requests::find(&pool, vendor_id, key.as_str()).await.map_err(SaleError::Store)?;
            return match claim {
                Some(claim) => replay(claim, &digest, vendor_id, key, &publisher, &pool, now).await,
                None => Err(SaleError::KeyInFlight),
            };
        }
    }
    let stock = vendor.stock;
    if stock < sale.quantity.get() {
        if let Some(key) = &key {
            // Nothing was recorded: free the key for a retry after a restock.
            sale_requests::release(&pool, vendor_id, key.as_str()).await.map_err(SaleError::Store)?;
        }
        return Err(SaleError::InsufficientStock { stock });
    }
    produce(&answer, key.as_ref(), &stored, &publisher, &pool, now).await?;
    Ok(HttpResponse::Created().json(&answer))
}

/// Produces the sale; settles the idempotency claim either way.
async fn produce(
    answer: &SaleAnswer,
    key: Option<&IdempotencyKey>,
    stored: &Value,
    publisher: &Publisher,
    pool: &PgPool,
    now: DateTime<Utc>,
) -> Result<(), SaleError> {
    let event = answer.event(now)?;
    let sent = publisher.send(&topics::SALES, &VendorKey { vendor_id: answer.vendor_id }, &event, None).await;
    match (sent, key) {
        (Ok(_), None) => Ok(()),
        (Ok(_), Some(key)) => {
            // The sale is recorded; if marking the claim fails, the claim goes
            // stale and a later repeat re-produces the same sale id, which
            // consumers deduplicate.
            if let Err(error) = sale_requests::complete(pool, answer.vendor_id, key.as_str(), stored).await {
                tracing::warn!(%error, "sale recorded but its idempotency claim was not marked done");
            }
            Ok(())
        }
        (Err(error), key) => {
            if let Some(key) = key {
                if let Err(release) = sale_requests::release(pool, answer.vendor_id, key.as_str()).await {
                    tracing::warn!(error = %release, "could not release the idempotency claim of a failed sale");
                }
            }
            Err(SaleError::Publish(error))
        }
    }
}

/// Answers a repeated key from its claim.
async fn replay(
    claim: Claim,
    digest: &str,
    vendor_id: Uuid,
    key: &IdempotencyKey,
    publisher: &Publisher,
    pool: &PgPool,
    now: DateTime<Utc>,
) -> Result<HttpResponse, SaleError> {
    if claim.request_sha256 != digest {
        return Err(SaleError::KeyReused);
    }
    let stored = claim.body().cloned().ok_or(SaleError::CorruptClaim)?;
    let answer: SaleAnswer = serde_json::from_value(stored.clone()).map_err(|_| SaleError::CorruptClaim)?;
    if claim.state() == Some(DONE) {
        return Ok(HttpResponse::Created().json(&answer));
    }
    if sale_requests::take_over_stale(pool, vendor_id, key.as_str(), STALE_CLAIM_SECS)
        .await
        .map_err(SaleError::Store)?
    {
        tracing::warn!(sale_id = %answer.sale_id, "re-producing a sale whose request was abandoned");
        produce(&answer, Some(key), &stored, publisher, pool, now).await?;
        return Ok(HttpResponse::Created().json(&answer));
    }
    Err(SaleError::KeyInFlight)
}
