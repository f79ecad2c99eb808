//! Reads of accounting's projections: a vendor's weekly aggregate and their
//! issued statements.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use mamochi_common::schema::{statements, weekly_sales};
use uuid::Uuid;

use super::{connection, StoreError};

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = weekly_sales, check_for_backend(diesel::pg::Pg))]
pub struct WeekRow {
    pub sales_count: i64,
    pub units: i64,
    pub earnings_clp: i64,
    pub closed_at: Option<DateTime<Utc>>,
}

pub async fn week(pool: &PgPool, vendor_id: Uuid, iso_week: &str) -> Result<Option<WeekRow>, StoreError> {
    let mut conn = connection(pool).await?;
    Ok(weekly_sales::table
        .find((vendor_id, iso_week))
        .select(WeekRow::as_select())
        .first(&mut conn)
        .await
        .optional()?)
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = statements, check_for_backend(diesel::pg::Pg))]
pub struct StatementRow {
    pub statement_id: Uuid,
    pub iso_week: String,
    pub sales_count: i64,
    pub units: i64,
    pub earnings_clp: i64,
    pub average_ticket_clp: i64,
    pub issued_at: DateTime<Utc>,
}

/// The vendor's statements, newest week first (labels sort chronologically).
pub async fn statements(pool: &PgPool, vendor_id: Uuid) -> Result<Vec<StatementRow>, StoreError> {
    let mut conn = connection(pool).await?;
    Ok(statements::table
        .filter(statements::vendor_id.eq(vendor_id))
        .order((statements::iso_week.desc(), statements::issued_at.desc()))
        .select(StatementRow::as_select())
        .load(&mut conn)
        .await?)
}
