//! A vendor's own data: profile and stock, the weekly sales summary and the
//! issued statements. The profile and accounting figures are read from the
//! PostgreSQL projections; the stock is the gateway's stock view, the same
//! figure the stock rule of `POST /v1/sales` applies. A vendor reads only
//! their own: another vendor's id is 403.
//!
//! `POST /v1/me/keys` rotates the caller's API key: the new key is in the
//! answer (its only appearance in clear text; the database keeps its
//! SHA-256), and every gateway refuses the old one within the key cache's
//! time-to-live (`gateway.key_cache_ttl_ms`, 5 s by default). The
//! replacement is a compare-and-set on the old key's digest, so a key is
//! rotated once: a repeated request answers 409 while the old key is still
//! accepted, 401 after. With an `Idempotency-Key`, the new key is derived
//! from the old key and that header ([`crate::domain::rotation`]): a retry
//! whose first answer was lost, sent with the same old key and header within
//! that bound, gets the same new key (201 again) instead of a 409. That is
//! why this gateway does not forget the old key at once: the bound is also
//! the retry window. A key lost after it is re-issued by staff.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use mamochi_events::credentials::{self, NewApiKey, RandomError};
use mamochi_rules::digest::sha256_hex;
use mamochi_rules::money::average_ticket;
use serde_json::json;
use uuid::Uuid;

use crate::api_response_error;
use crate::auth::{self, Vendor};
use crate::body::FieldError;
use crate::domain::rotation::RotationSecret;
use crate::domain::{IdempotencyKey, IsoWeek};
use crate::errors::{ApiError, ToApiError};
use crate::routes::sales::IDEMPOTENCY_HEADER;
use crate::store::{self, StoreError};
use crate::views::StockView;

/// How long a replaced key may still be accepted by other gateway
/// processes: the key cache's time-to-live, shown in the rotation's answer.
#[derive(Debug, Clone, Copy)]
pub struct KeyRevocationBound(pub std::time::Duration);

#[derive(Debug, thiserror::Error)]
pub enum MeError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("not found")]
    NotFound,
    #[error("another vendor's resource")]
    Forbidden,
    #[error("database")]
    Store(#[from] StoreError),
}

impl ToApiError for MeError {
    fn to_api(&self) -> ApiError {
        match self {
            Self::Invalid(error) => error.clone().into(),
            Self::NotFound => ApiError::not_found("vendor"),
            Self::Forbidden => ApiError::new(StatusCode::FORBIDDEN, "forbidden", "you can only read your own cart"),
            Self::Store(_) => ApiError::unavailable(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("the key was already replaced")]
    AlreadyRotated,
    #[error("no random source")]
    Random(#[from] RandomError),
    #[error("database")]
    Store(#[from] StoreError),
}

impl ToApiError for RotateError {
    fn to_api(&self) -> ApiError {
        match self {
            Self::Invalid(error) => error.clone().into(),
            Self::AlreadyRotated => ApiError::new(
                StatusCode::CONFLICT,
                "key_already_rotated",
                "this API key was already replaced by a rotation; use the new key (staff can re-issue a lost one)",
            ),
            Self::Random(_) => ApiError::internal(),
            Self::Store(_) => ApiError::unavailable(),
        }
    }
}

api_response_error!(MeError, RotateError);

/// `POST /v1/me/keys`: replaces the caller's key by a new one, returned once.
#[tracing::instrument(skip_all, fields(vendor_id = %vendor.vendor_id))]
pub async fn rotate_key(
    vendor: Vendor,
    request: HttpRequest,
    pool: web::Data<PgPool>,
    secret: web::Data<RotationSecret>,
    bound: web::Data<KeyRevocationBound>,
) -> Result<HttpResponse, RotateError> {
    // The extractor accepted this very credential, so it is present.
    let old_key = auth::bearer(&request).ok_or(RotateError::AlreadyRotated)?;
    let old_sha256 = sha256_hex(&old_key);
    let idempotency_key = match request.headers().get(IDEMPOTENCY_HEADER) {
        None => None,
        Some(value) => Some(
            IdempotencyKey::parse(value.to_str().unwrap_or("\u{7f}"))
                .map_err(|error| FieldError::invalid("Idempotency-Key", error))?,
        ),
    };
    let new_key: NewApiKey = match &idempotency_key {
        Some(idempotency_key) => secret.derive(&old_key, idempotency_key.as_str()),
        None => credentials::generate()?,
    };
    let rotated =
        store::members::rotate_key(&pool, vendor.vendor_id, &old_sha256, &new_key.key_id, &new_key.sha256).await?;
    if rotated {
        tracing::info!(key_id = %new_key.key_id, "vendor rotated their API key");
    } else {
        // Only a retry of the same rotation finds its own result in place.
        let current = store::members::key_digest(&pool, vendor.vendor_id).await?;
        if idempotency_key.is_none() || current.as_deref() != Some(new_key.sha256.as_str()) {
            return Err(RotateError::AlreadyRotated);
        }
    }
    Ok(HttpResponse::Created().json(json!({
        "vendor_id": vendor.vendor_id,
        "api_key": new_key.clear,
        "key_id": new_key.key_id,
        "previous_key_refused_within_ms": u64::try_from(bound.0.as_millis()).unwrap_or(u64::MAX),
    })))
}

async fn profile(pool: &PgPool, stock: &StockView, vendor_id: Uuid) -> Result<HttpResponse, MeError> {
    let profile = store::members::profile(pool, vendor_id).await?.ok_or(MeError::NotFound)?;
    Ok(HttpResponse::Ok().json(json!({
        "member_id": profile.member_id,
        "full_name": profile.full_name,
        "email": profile.email,
        "comuna": profile.comuna,
        "cart_plate": profile.cart_plate,
        "paid": profile.paid,
        "stock": stock.stock(vendor_id),
        "member_since": profile.member_since,
    })))
}

/// `GET /v1/me`.
#[tracing::instrument(skip_all, fields(vendor_id = %vendor.vendor_id))]
pub async fn me(vendor: Vendor, pool: web::Data<PgPool>, stock: web::Data<StockView>) -> Result<HttpResponse, MeError> {
    profile(&pool, &stock, vendor.vendor_id).await
}

/// `GET /v1/vendors/{vendor_id}`: one's own profile; 403 for anyone else's.
#[tracing::instrument(skip_all, fields(vendor_id = %vendor.vendor_id))]
pub async fn vendor(
    vendor: Vendor,
    path: web::Path<String>,
    pool: web::Data<PgPool>,
    stock: web::Data<StockView>,
) -> Result<HttpResponse, MeError> {
    let requested = Uuid::parse_str(&path).map_err(|_| MeError::NotFound)?;
    if requested != vendor.vendor_id {
        return Err(MeError::Forbidden);
    }
    profile(&pool, &stock, requested).await
}

/// `GET /v1/me/sales/summary?week=YYYY-Www` (default: this week in Santiago).
#[tracing::instrument(skip_all, fields(vendor_id = %vendor.vendor_id))]
pub async fn summary(
    vendor: Vendor,
    query: web::Query<HashMap<String, String>>,
    pool: web::Data<PgPool>,
    clock: web::Data<Clock>,
) -> Result<HttpResponse, MeError> {
    let week = match query.get("week") {
        Some(raw) => IsoWeek::parse(raw).map_err(|error| FieldError::invalid("week", error))?,
        None => IsoWeek::containing(clock.now()),
    };
    let row = store::accounting::week(&pool, vendor.vendor_id, week.as_str()).await?;
    let (sales_count, units, earnings_clp, closed) =
        row.map_or((0, 0, 0, false), |row| (row.sales_count, row.units, row.earnings_clp, row.closed_at.is_some()));
    Ok(HttpResponse::Ok().json(json!({
        "iso_week": week.as_str(),
        "sales_count": sales_count,
        "units": units,
        "earnings_clp": earnings_clp,
        "average_ticket_clp": average_ticket(earnings_clp, sales_count),
        "closed": closed,
    })))
}

/// `GET /v1/me/statements`, newest first.
#[tracing::instrument(skip_all, fields(vendor_id = %vendor.vendor_id))]
pub async fn statements(vendor: Vendor, pool: web::Data<PgPool>) -> Result<HttpResponse, MeError> {
    let rows = store::accounting::statements(&pool, vendor.vendor_id).await?;
    let statements: Vec<_> = rows
        .into_iter()
        .map(|row| {
            json!({
                "statement_id": row.statement_id,
                "iso_week": row.iso_week,
                "sales_count": row.sales_count,
                "units": row.units,
                "earnings_clp": row.earnings_clp,
                "average_ticket_clp": row.average_ticket_clp,
                "issued_at": row.issued_at,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "statements": statements })))
}
