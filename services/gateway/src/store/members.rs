//! Reads of the `members` and `carts` projections (written by approval and
//! distributor): who holds an API key, a member's profile and cart stock.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use mamochi_common::schema::{carts, members};
use uuid::Uuid;

use super::{connection, StoreError};

/// The member whose API key hashes to `sha256_hex`, if any, and their
/// cart's stock (0 when they have no cart yet).
pub async fn by_key_digest(pool: &PgPool, sha256_hex: &str) -> Result<Option<(Uuid, i32)>, StoreError> {
    let mut conn = connection(pool).await?;
    // One round trip answers both questions a sale asks (who, and how much
    // stock): the cart comes along by primary key.
    let found: Option<(Uuid, Option<i32>)> = members::table
        .left_join(carts::table.on(carts::vendor_id.eq(members::member_id)))
        .filter(members::api_key_sha256.eq(sha256_hex))
        .select((members::member_id, carts::stock.nullable()))
        .first(&mut conn)
        .await
        .optional()?;
    Ok(found.map(|(member_id, stock)| (member_id, stock.unwrap_or(0))))
}

/// A member as `GET /v1/me` shows them.
#[derive(Debug, Queryable)]
pub struct Profile {
    pub member_id: Uuid,
    pub full_name: String,
    pub email: String,
    pub comuna: String,
    pub cart_plate: String,
    pub paid: bool,
    pub member_since: DateTime<Utc>,
    /// `None` when the member has no cart row yet.
    pub stock: Option<i32>,
}

pub async fn profile(pool: &PgPool, member_id: Uuid) -> Result<Option<Profile>, StoreError> {
    let mut conn = connection(pool).await?;
    Ok(members::table
        .left_join(carts::table)
        .filter(members::member_id.eq(member_id))
        .select((
            members::member_id,
            members::full_name,
            members::email,
            members::comuna,
            members::cart_plate,
            members::paid,
            members::created_at,
            carts::stock.nullable(),
        ))
        .first::<Profile>(&mut conn)
        .await
        .optional()?)
}
