//! A vendor's own data: profile and stock, the weekly sales summary and the
//! issued statements. The profile and accounting figures are read from the
//! PostgreSQL projections; the stock is the gateway's stock view, the same
//! figure the stock rule of `POST /v1/sales` applies. A vendor reads only
//! their own: another vendor's id is 403.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use serde_json::json;
use uuid::Uuid;

use crate::api_response_error;
use crate::auth::Vendor;
use crate::body::FieldError;
use crate::domain::IsoWeek;
use crate::errors::{ApiError, ToApiError};
use crate::store::{self, StoreError};
use crate::views::StockView;

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

api_response_error!(MeError);

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

/// Earnings per sale in whole pesos, rounded half up; 0 without sales.
pub fn average_ticket(earnings_clp: i64, sales_count: i64) -> i64 {
    if sales_count <= 0 {
        return 0;
    }
    (earnings_clp + sales_count / 2) / sales_count
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_ticket_rounds_half_up_and_is_zero_without_sales() {
        assert_eq!(average_ticket(0, 0), 0);
        assert_eq!(average_ticket(3_000, 2), 1_500);
        assert_eq!(average_ticket(1_000, 3), 333);
        assert_eq!(average_ticket(2_000, 3), 667);
    }
}
