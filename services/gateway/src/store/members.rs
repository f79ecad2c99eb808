//! The `members` projection (written by approval): who holds an API key and
//! a member's profile; and the one thing the gateway writes there, the key
//! columns (`api_key_id`, `api_key_sha256`) of an existing member, when a
//! vendor rotates their key or staff revoke or re-issue it. Each write is one
//! statement on one row, so it cannot interleave with approval's (approval
//! only inserts members, and never touches a member's key again).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use mamochi_common::schema::members;
use uuid::Uuid;

use super::{connection, StoreError};

/// Prefix of what `api_key_sha256` and `api_key_id` hold once revoked: never
/// a hex digest, so no key matches it; the member id after it keeps the
/// columns unique.
const REVOKED: &str = "revoked:";

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

/// Replaces the member's key digest `old_sha256` by a new key, only if
/// `old_sha256` is still the current one (compare and set: two rotations of
/// one key cannot both win). Returns whether it was replaced.
pub async fn rotate_key(
    pool: &PgPool,
    member_id: Uuid,
    old_sha256: &str,
    new_key_id: &str,
    new_sha256: &str,
) -> Result<bool, StoreError> {
    let mut conn = connection(pool).await?;
    let updated = diesel::update(
        members::table.filter(members::member_id.eq(member_id)).filter(members::api_key_sha256.eq(old_sha256)),
    )
    .set((members::api_key_id.eq(new_key_id), members::api_key_sha256.eq(new_sha256)))
    .execute(&mut conn)
    .await?;
    Ok(updated == 1)
}

/// The member's current key digest (`None`: no such member).
pub async fn key_digest(pool: &PgPool, member_id: Uuid) -> Result<Option<String>, StoreError> {
    let mut conn = connection(pool).await?;
    Ok(members::table
        .filter(members::member_id.eq(member_id))
        .select(members::api_key_sha256)
        .first(&mut conn)
        .await
        .optional()?)
}

/// A member whose key staff replaced or revoked: the digest that stopped
/// working (to forget it at once) and whom to write to.
#[derive(Debug, QueryableByName)]
pub struct KeyChange {
    #[diesel(sql_type = Text)]
    pub old_sha256: String,
    #[diesel(sql_type = SqlUuid)]
    pub registration_id: Uuid,
    #[diesel(sql_type = Text)]
    pub full_name: String,
    #[diesel(sql_type = Text)]
    pub email: String,
}

/// Sets the member's key columns in one statement, returning the old digest
/// with the member's contact (`None`: no such member). The row lock of the
/// update makes reading the old value and writing the new one atomic.
async fn set_key(
    pool: &PgPool,
    member_id: Uuid,
    new_key_id: Option<&str>,
    new_sha256: Option<&str>,
) -> Result<Option<KeyChange>, StoreError> {
    let mut conn = connection(pool).await?;
    let rows: Vec<KeyChange> = diesel::sql_query(
        "UPDATE members AS m
            SET api_key_id = COALESCE($2, $4 || m.member_id::text),
                api_key_sha256 = COALESCE($3, $4 || m.member_id::text)
           FROM (SELECT member_id, api_key_sha256 FROM members WHERE member_id = $1 FOR UPDATE) AS old
          WHERE m.member_id = old.member_id
      RETURNING old.api_key_sha256 AS old_sha256, m.registration_id, m.full_name, m.email",
    )
    .bind::<SqlUuid, _>(member_id)
    .bind::<diesel::sql_types::Nullable<Text>, _>(new_key_id)
    .bind::<diesel::sql_types::Nullable<Text>, _>(new_sha256)
    .bind::<Text, _>(REVOKED)
    .load(&mut conn)
    .await?;
    Ok(rows.into_iter().next())
}

/// Gives the member a new key whatever the current one (staff re-issue).
pub async fn replace_key(
    pool: &PgPool,
    member_id: Uuid,
    new_key_id: &str,
    new_sha256: &str,
) -> Result<Option<KeyChange>, StoreError> {
    set_key(pool, member_id, Some(new_key_id), Some(new_sha256)).await
}

/// Leaves the member without a working key (staff revocation); revoking a
/// revoked key changes nothing.
pub async fn revoke_key(pool: &PgPool, member_id: Uuid) -> Result<Option<KeyChange>, StoreError> {
    set_key(pool, member_id, None, None).await
}
