//! `POST /v1/sales`: a vendor records a sale. The sale is produced as
//! `SaleRecorded` (keyed by vendor) once it passes validation and the stock
//! rule; accounting and the distributor consume it. A sale may say where it
//! happened (`location`, checked by the location ping's rules); it travels
//! in the event as it came, and costs no lookup.
//!
//! Hot path: no synchronous database statement of its own in the steady
//! state. The key is checked against the in-memory key directory, the stock
//! against the in-memory stock view ([`crate::views`]); only an
//! `Idempotency-Key` costs a row, written with many others in one group
//! commit ([`crate::store::sale_requests`]).
//!
//! Idempotency: with an `Idempotency-Key`, the key is claimed before
//! producing, so a repeated key records nothing and returns the first answer;
//! the same key with a different body is refused (422); a repeat while the
//! first is still being produced is told to retry (409). The sale id is
//! derived from (vendor, key, request): a retry after an ambiguous failure
//! (the broker wrote the sale but its acknowledgement was lost, so the claim
//! was released and the client got 503) produces the same sale id again, and
//! accounting and the distributor apply each sale id once. So a sale retried
//! with its key is counted once however its first attempt failed. A key
//! names one sale: use a fresh one (a UUID) for every sale. Answers are kept
//! for `gateway.idempotency_retention_hours` (24 h by default).
//!
//! Stock rule: a sale larger than the cart's current stock is refused (409).
//! The stock view lags the distributor's commits by milliseconds, so two
//! concurrent sales can both pass it; the distributor then floors the stock
//! at zero and restocks.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use mamochi_events::publish::PublishError;
use mamochi_events::{topics, SaleLocation, SaleRecorded, VendorKey};
use mamochi_rules::digest::sha256_hex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::event_time;
use crate::admission::Admitted;
use crate::api_response_error;
use crate::auth::Vendor;
use crate::body::{FieldError, JsonObject};
use crate::domain::{IdempotencyKey, NewSale, PaymentMethod};
use crate::errors::{ApiError, ToApiError};
use crate::store::sale_requests::{self, Claim, ClaimBook, NewClaim, DONE};
use crate::store::StoreError;
use crate::views::StockView;
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

/// The answer to a recorded sale; also what an idempotency claim stores,
/// so a re-produced sale carries its location too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaleAnswer {
    pub sale_id: Uuid,
    pub vendor_id: Uuid,
    pub quantity: i32,
    pub unit_price_clp: i64,
    pub total_clp: i64,
    pub payment_method: String,
    pub occurred_at: DateTime<Utc>,
    /// `null` in answers without one; claims stored before sales had
    /// locations lack the key and read as `None`.
    #[serde(default)]
    pub location: Option<SaleLocation>,
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
            location: self.location.clone(),
        })
    }
}

/// Namespace of sale ids derived from an Idempotency-Key.
const SALE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6d61_6d6f_6368_5a1e_8000_6964_656d_0001);

/// The sale id of a keyed request: the same vendor, key and request always
/// give the same id, so every retry of a sale is the same event.
pub fn derived_sale_id(vendor_id: Uuid, key: &str, request_sha256: &str) -> Uuid {
    Uuid::new_v5(&SALE_ID_NAMESPACE, format!("{vendor_id}:{request_sha256}:{key}").as_bytes())
}

/// Digest of the request as parsed (field order and spacing do not matter;
/// an absent `occurred_at` stays absent, so a retry matches). A location
/// enters it only when sent: a sale without one digests as it did before
/// sales had locations, so a key claimed then still matches its retry.
fn request_digest(sale: &NewSale) -> String {
    let mut canonical = json!({
        "quantity": sale.quantity.get(),
        "unit_price_clp": sale.unit_price_clp.get(),
        "payment_method": sale.payment_method.as_str(),
        "occurred_at": sale.occurred_at.map(|t| t.timestamp_millis()),
    });
    if let Some(location) = &sale.location {
        canonical["location"] = json!([location.latitude, location.longitude, location.accuracy_m]);
    }
    sha256_hex(&canonical.to_string())
}

/// `POST /v1/sales`.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(skip_all, fields(vendor_id = %vendor.vendor_id, sale_id))]
pub async fn record(
    _admitted: Admitted,
    vendor: Vendor,
    body: Result<web::Json<Map<String, Value>>, actix_web::Error>,
    request: HttpRequest,
    publisher: web::Data<Publisher>,
    claims: web::Data<ClaimBook>,
    stock: web::Data<StockView>,
    pool: web::Data<PgPool>,
    clock: web::Data<Clock>,
) -> Result<HttpResponse, SaleError> {
    let body = JsonObject::from(body.map_err(SaleError::Body)?.into_inner());
    let now = event_time(clock.now());
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
        sale_id: match &key {
            Some(key) => derived_sale_id(vendor_id, key.as_str(), &digest),
            None => Uuid::new_v4(),
        },
        vendor_id,
        quantity: sale.quantity.get(),
        unit_price_clp: sale.unit_price_clp.get(),
        total_clp: sale.total_clp(),
        payment_method: sale.payment_method.as_str().to_string(),
        occurred_at: sale.occurred_at.unwrap_or(now),
        location: sale.location.map(|position| SaleLocation {
            latitude: position.latitude,
            longitude: position.longitude,
            accuracy_m: position.accuracy_m,
        }),
    };
    tracing::Span::current().record("sale_id", tracing::field::display(answer.sale_id));
    let stored = serde_json::to_value(&answer).map_err(|_| SaleError::CorruptClaim)?;
    if let Some(key) = &key {
        // Claim first: a new key, the usual case, costs its share of one
        // group commit; only a key already on record (a repeat, or a
        // concurrent twin) is read, and answered from its claim whatever
        // the stock is now.
        let claim = NewClaim {
            vendor_id,
            key: key.as_str().to_string(),
            request_sha256: digest.clone(),
            sale_id: answer.sale_id,
            body: stored.clone(),
        };
        if !claims.claim(claim).await.map_err(SaleError::Store)? {
            let claim = sale_requests::find(&pool, vendor_id, key.as_str()).await.map_err(SaleError::Store)?;
            return match claim {
                Some(claim) => replay(claim, &digest, vendor_id, key, &publisher, &claims, &pool, now).await,
                None => Err(SaleError::KeyInFlight),
            };
        }
    }
    let stock = stock.stock(vendor_id);
    if stock < sale.quantity.get() {
        if let Some(key) = &key {
            // Nothing was recorded: free the key for a retry after a restock.
            claims.release(vendor_id, key.as_str()).await.map_err(SaleError::Store)?;
        }
        return Err(SaleError::InsufficientStock { stock });
    }
    produce(&answer, key.as_ref(), &stored, &publisher, &claims, now).await?;
    Ok(HttpResponse::Created().json(&answer))
}

/// Produces the sale; settles the idempotency claim either way.
async fn produce(
    answer: &SaleAnswer,
    key: Option<&IdempotencyKey>,
    stored: &Value,
    publisher: &Publisher,
    claims: &ClaimBook,
    now: DateTime<Utc>,
) -> Result<(), SaleError> {
    let event = answer.event(now)?;
    let sent = publisher.send(&topics::SALES, &VendorKey { vendor_id: answer.vendor_id }, &event, None).await;
    match (sent, key) {
        (Ok(_), None) => Ok(()),
        (Ok(_), Some(key)) => {
            claims.settle(answer.vendor_id, key.as_str(), stored.clone());
            Ok(())
        }
        (Err(error), key) => {
            // The failure may be ambiguous (written, acknowledgement lost):
            // releasing is still safe, since a retry derives the same sale id.
            if let Some(key) = key {
                if let Err(release) = claims.release(answer.vendor_id, key.as_str()).await {
                    tracing::warn!(error = %release, "could not release the idempotency claim of a failed sale");
                }
            }
            Err(SaleError::Publish(error))
        }
    }
}

/// Answers a repeated key from its claim.
#[allow(clippy::too_many_arguments)]
async fn replay(
    claim: Claim,
    digest: &str,
    vendor_id: Uuid,
    key: &IdempotencyKey,
    publisher: &Publisher,
    claims: &ClaimBook,
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
        produce(&answer, Some(key), &stored, publisher, claims, now).await?;
        return Ok(HttpResponse::Created().json(&answer));
    }
    Err(SaleError::KeyInFlight)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn sale(body: Value) -> NewSale {
        let Value::Object(map) = body else { panic!("an object") };
        NewSale::parse(&JsonObject::from(map), Utc::now()).expect("valid")
    }

    #[test]
    fn a_location_enters_the_digest_only_when_sent() {
        let plain = sale(json!({"quantity": 2, "unit_price_clp": 1500, "payment_method": "cash"}));
        let before_locations =
            json!({"quantity": 2, "unit_price_clp": 1500, "payment_method": "cash", "occurred_at": null});
        assert_eq!(request_digest(&plain), sha256_hex(&before_locations.to_string()));
        let here = sale(json!({"quantity": 2, "unit_price_clp": 1500, "payment_method": "cash",
            "location": {"latitude": -33.45, "longitude": -70.66}}));
        let there = sale(json!({"quantity": 2, "unit_price_clp": 1500, "payment_method": "cash",
            "location": {"latitude": -33.45, "longitude": -70.67}}));
        let (plain, here, there) = (request_digest(&plain), request_digest(&here), request_digest(&there));
        assert!(plain != here && here != there, "another place is another request");
    }

    #[test]
    fn a_claim_stored_before_locations_reads_without_one() {
        let stored = json!({"sale_id": Uuid::nil(), "vendor_id": Uuid::nil(), "quantity": 1, "unit_price_clp": 1,
            "total_clp": 1, "payment_method": "cash", "occurred_at": "2026-12-01T12:00:00Z"});
        let answer: SaleAnswer = serde_json::from_value(stored).expect("an old claim");
        assert_eq!(answer.location, None);
        assert_eq!(serde_json::to_value(&answer).expect("json")["location"], Value::Null, "answered as null");
    }
}
