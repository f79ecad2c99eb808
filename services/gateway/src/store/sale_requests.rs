//! Idempotency claims of `POST /v1/sales`, in `sale_requests`.
//!
//! A request with an `Idempotency-Key` claims (vendor, key) with a row
//! holding its body's digest, its sale id and the answer it will give, marked
//! `pending`; only when the insert finds the key taken is the claim on record
//! read. Only the request that inserted the row produces the sale; once
//! Kafka acknowledged it the row becomes `done`, and a repeat of the key gets
//! the stored answer. If producing fails the claim is released so a retry can
//! record the sale. A `pending` claim left by a crashed gateway is taken over
//! after `stale_after_secs` and re-produced with the same sale id.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use mamochi_common::schema::sale_requests;
use serde_json::Value;
use uuid::Uuid;

use super::{connection, StoreError};

/// `response` JSON: `{"state": "pending"|"done", "body": {...}}`.
pub const PENDING: &str = "pending";
pub const DONE: &str = "done";

/// A claim already on record for (vendor, key).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sale_requests, check_for_backend(diesel::pg::Pg))]
pub struct Claim {
    pub request_sha256: String,
    pub sale_id: Uuid,
    pub response: Value,
}

impl Claim {
    pub fn state(&self) -> Option<&str> {
        self.response.get("state").and_then(Value::as_str)
    }

    pub fn body(&self) -> Option<&Value> {
        self.response.get("body")
    }
}

pub fn response(state: &str, body: &Value) -> Value {
    serde_json::json!({ "state": state, "body": body })
}

pub async fn find(pool: &PgPool, vendor_id: Uuid, key: &str) -> Result<Option<Claim>, StoreError> {
    let mut conn = connection(pool).await?;
    Ok(sale_requests::table.find((vendor_id, key)).select(Claim::as_select()).first(&mut conn).await.optional()?)
}

/// Inserts a pending claim; `false` if another request holds the key.
pub async fn claim(
    pool: &PgPool,
    vendor_id: Uuid,
    key: &str,
    request_sha256: &str,
    sale_id: Uuid,
    body: &Value,
) -> Result<bool, StoreError> {
    let mut conn = connection(pool).await?;
    let inserted = diesel::insert_into(sale_requests::table)
        .values((
            sale_requests::vendor_id.eq(vendor_id),
            sale_requests::idempotency_key.eq(key),
            sale_requests::request_sha256.eq(request_sha256),
            sale_requests::sale_id.eq(sale_id),
            sale_requests::response.eq(response(PENDING, body)),
        ))
        .on_conflict_do_nothing()
        .execute(&mut conn)
        .await?;
    Ok(inserted == 1)
}

/// Marks the claim done: from now on a repeat gets the stored answer.
///
/// Committed without waiting for the log flush (`synchronous_commit` off for
/// this one statement's transaction; PostgreSQL applies the value in force
/// at commit). Losing the mark in a database crash is safe: the claim stays
/// `pending`, goes stale, and a repeat re-produces the same sale id, which
/// consumers deduplicate. It saves the sale's second flush wait.
pub async fn complete(pool: &PgPool, vendor_id: Uuid, key: &str, body: &Value) -> Result<(), StoreError> {
    let mut conn = connection(pool).await?;
    diesel::sql_query(
        "UPDATE sale_requests SET response = $3 \
         FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed \
         WHERE vendor_id = $1 AND idempotency_key = $2",
    )
    .bind::<SqlUuid, _>(vendor_id)
    .bind::<Text, _>(key)
    .bind::<Jsonb, _>(response(DONE, body))
    .execute(&mut conn)
    .await?;
    Ok(())
}

/// Drops a pending claim whose sale was not recorded.
pub async fn release(pool: &PgPool, vendor_id: Uuid, key: &str) -> Result<(), StoreError> {
    let mut conn = connection(pool).await?;
    diesel::sql_query(
        "DELETE FROM sale_requests WHERE vendor_id = $1 AND idempotency_key = $2 AND response->>'state' = 'pending'",
    )
    .bind::<SqlUuid, _>(vendor_id)
    .bind::<Text, _>(key)
    .execute(&mut conn)
    .await?;
    Ok(())
}

/// Takes over a pending claim older than `stale_after_secs` (its gateway
/// died mid-request); `true` if this request now owns it.
pub async fn take_over_stale(
    pool: &PgPool,
    vendor_id: Uuid,
    key: &str,
    stale_after_secs: i64,
) -> Result<bool, StoreError> {
    let mut conn = connection(pool).await?;
    let updated = diesel::sql_query(
        "UPDATE sale_requests SET created_at = now() \
         WHERE vendor_id = $1 AND idempotency_key = $2 AND response->>'state' = 'pending' \
           AND created_at < now() - make_interval(secs => $3::float8)",
    )
    .bind::<SqlUuid, _>(vendor_id)
    .bind::<Text, _>(key)
    .bind::<BigInt, _>(stale_after_secs)
    .execute(&mut conn)
    .await?;
    Ok(updated == 1)
}
