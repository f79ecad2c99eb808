//! Reads of the `members` projection (written by approval): who holds an API
//! key, and a member's profile.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use mamochi_common::schema::members;
use uuid::Uuid;

use super::{connection, StoreError};

/// The member whose API key hashes to `sha256_hex`, if any (read through
/// [`crate::views::KeyDirectory`], which remembers the answer for a while).
pub async fn by_key_digest(pool: &PgPool, sha256_hex: &str) -> Result<Option<Uuid>, StoreError> {
    let mut conn = connection(pool).await?;
    Ok(members::table
        .filter(members::api_key_sha256.eq(sha256_hex))
        .select(members::member_id)
        .first(&mut conn)
        .await
        .optional()?)
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
}

pub async fn profile(pool: &PgPool, member_id: Uuid) -> Result<Option<Profile>, StoreError> {
    let mut conn = connection(pool).await?;
    Ok(members::table
        .filter(members::member_id.eq(member_id))
        .select((
            members::member_id,
            members::full_name,
            members::email,
            members::comuna,
            members::cart_plate,
            members::paid,
            members::created_at,
        ))
        .first::<Profile>(&mut conn)
        .await
        .optional()?)
}
