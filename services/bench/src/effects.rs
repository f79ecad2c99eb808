//! What the platform's own PostgreSQL tables say about the bench's vendors
//! and forms, read after the fact.
//!
//! - Sales are not timed from here: `processed_events.processed_at` is
//!   `now()`, the *start* of the consumer's transaction, so a latency or a
//!   drain rate built on it would end before the commit. Sale commits are
//!   observed while the load runs by [`crate::commits`] instead.
//! - A form's decision is `registrations.decided_at`, stamped by the
//!   approval service when it decides (its transaction commits after it);
//!   forms sent to manual review have none and are counted apart. The
//!   backlog's decision rate counts until the bench saw the last decision
//!   committed ([`crate::approval`]).

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use uuid::Uuid;

/// Ids per query: keeps each `= ANY($1)` array a reasonable size.
const CHUNK: usize = 10_000;

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct MemberRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    member_id: Uuid,
    #[diesel(sql_type = Text)]
    email: String,
}

#[derive(QueryableByName)]
struct FormRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    registration_id: Uuid,
    #[diesel(sql_type = Bool)]
    paid: bool,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Timestamptz)]
    submitted_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    decided_at: Option<DateTime<Utc>>,
}

/// A form's fate as the approval service recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormFate {
    pub paid: bool,
    pub status: String,
    pub submitted_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

async fn connection(
    pool: &PgPool,
) -> anyhow::Result<diesel_async::pooled_connection::deadpool::Object<diesel_async::AsyncPgConnection>> {
    pool.get().await.map_err(|error| anyhow::anyhow!("database pool: {error}"))
}

/// Member ids of the bench vendors, by email.
pub async fn members_by_email(pool: &PgPool, emails: &[String]) -> anyhow::Result<HashMap<String, Uuid>> {
    let mut conn = connection(pool).await?;
    let rows: Vec<MemberRow> = diesel::sql_query("SELECT member_id, email FROM members WHERE email = ANY($1)")
        .bind::<Array<Text>, _>(emails)
        .load(&mut conn)
        .await
        .context("while reading members")?;
    Ok(rows.into_iter().map(|row| (row.email, row.member_id)).collect())
}

/// How many of `ids` have a committed `processed_events` row of `consumer`
/// (committed at the latest when this answers).
pub async fn count_applied(pool: &PgPool, consumer: &str, ids: &[Uuid]) -> anyhow::Result<u64> {
    let mut conn = connection(pool).await?;
    let mut total = 0;
    for chunk in ids.chunks(CHUNK) {
        let row: CountRow = diesel::sql_query(
            "SELECT count(*) AS count FROM processed_events WHERE consumer = $1 AND event_id = ANY($2)",
        )
        .bind::<Text, _>(consumer)
        .bind::<Array<diesel::sql_types::Uuid>, _>(chunk)
        .get_result(&mut conn)
        .await
        .context("while counting applied events")?;
        total += row.count as u64;
    }
    Ok(total)
}

/// How many of `ids` are still waiting for a decision.
pub async fn count_undecided(pool: &PgPool, ids: &[Uuid]) -> anyhow::Result<u64> {
    let mut conn = connection(pool).await?;
    let mut total = 0;
    for chunk in ids.chunks(CHUNK) {
        let row: CountRow = diesel::sql_query(
            "SELECT count(*) AS count FROM registrations WHERE registration_id = ANY($1) AND status = 'received'",
        )
        .bind::<Array<diesel::sql_types::Uuid>, _>(chunk)
        .get_result(&mut conn)
        .await
        .context("while counting undecided forms")?;
        total += row.count as u64;
    }
    // Forms whose row the gateway could not write yet are not in the table
    // at all; they are undecided too.
    let present = count_present(&mut conn, ids).await?;
    Ok(total + (ids.len() as u64).saturating_sub(present))
}

async fn count_present(conn: &mut diesel_async::AsyncPgConnection, ids: &[Uuid]) -> anyhow::Result<u64> {
    let mut total = 0;
    for chunk in ids.chunks(CHUNK) {
        let row: CountRow =
            diesel::sql_query("SELECT count(*) AS count FROM registrations WHERE registration_id = ANY($1)")
                .bind::<Array<diesel::sql_types::Uuid>, _>(chunk)
                .get_result(conn)
                .await
                .context("while counting forms")?;
        total += row.count as u64;
    }
    Ok(total)
}

/// Each form's fate.
pub async fn form_fates(pool: &PgPool, ids: &[Uuid]) -> anyhow::Result<HashMap<Uuid, FormFate>> {
    let mut conn = connection(pool).await?;
    let mut fates = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let rows: Vec<FormRow> = diesel::sql_query(
            "SELECT registration_id, paid, status, submitted_at, decided_at FROM registrations WHERE registration_id = ANY($1)",
        )
        .bind::<Array<diesel::sql_types::Uuid>, _>(chunk)
        .load(&mut conn)
        .await
        .context("while reading forms")?;
        fates.extend(rows.into_iter().map(|row| {
            (
                row.registration_id,
                FormFate {
                    paid: row.paid,
                    status: row.status,
                    submitted_at: row.submitted_at,
                    decided_at: row.decided_at,
                },
            )
        }));
    }
    Ok(fates)
}

/// Milliseconds from `from` to `to` (negative when clocks disagree).
pub fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().map_or(f64::NAN, |micros| micros as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_between_keeps_sub_millisecond_precision() {
        let from = DateTime::from_timestamp_micros(1_000_000).expect("instant");
        let to = DateTime::from_timestamp_micros(1_012_500).expect("instant");
        assert!((millis_between(from, to) - 12.5).abs() < 1e-9);
        assert!((millis_between(to, from) + 12.5).abs() < 1e-9);
    }
}
