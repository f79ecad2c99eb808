//! Reads of accounting's projections: a vendor's weekly aggregate, their
//! figures per local hour of a day (`daily_sales`) and their issued
//! statements.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, SmallInt};
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

/// One local hour of a vendor's day, as accounting counted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct HourRow {
    #[diesel(sql_type = SmallInt)]
    pub local_hour: i16,
    #[diesel(sql_type = BigInt)]
    pub sales: i64,
    #[diesel(sql_type = BigInt)]
    pub units: i64,
    #[diesel(sql_type = BigInt)]
    pub earnings_clp: i64,
}

/// The hours of `local_date` (America/Santiago) in which the vendor sold, in
/// hour order.
pub async fn day_hours(pool: &PgPool, vendor_id: Uuid, local_date: NaiveDate) -> Result<Vec<HourRow>, StoreError> {
    let mut conn = connection(pool).await?;
    Ok(diesel::sql_query(
        "SELECT local_hour, sales, units, earnings_clp FROM daily_sales \
         WHERE vendor_id = $1 AND local_date = $2 AND sales > 0 ORDER BY local_hour",
    )
    .bind::<diesel::sql_types::Uuid, _>(vendor_id)
    .bind::<Date, _>(local_date)
    .load(&mut conn)
    .await?)
}
