//! Named staff tokens (`staff_tokens`): who may call `/v1/admin`. Written by
//! `mamochi staff add|revoke` (the operator's command on the database, which
//! is the root of trust: no built-in staff credential exists) and read by the
//! gateway's [`crate::auth::Staff`] extractor through
//! [`crate::views::StaffDirectory`]. Only each token's SHA-256 is stored; a
//! name is never reused, so the name a review records means one token.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;

use super::{connection, StoreError};

/// Why a token could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("the name must be 1 to 63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")]
    BadName,
    #[error("a staff token named {0:?} exists or existed; names are never reused")]
    Taken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether `name` is a valid staff name (the table's CHECK, said in Rust so
/// the command can explain a refusal before writing).
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    first_ok
        && name.len() <= 63
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_' || b == b'-')
}

/// Stores a new token's digest under `name`.
pub async fn add(pool: &PgPool, name: &str, token_sha256: &str) -> Result<(), AddError> {
    if !valid_name(name) {
        return Err(AddError::BadName);
    }
    let mut conn = connection(pool).await?;
    let inserted = diesel::sql_query(
        "INSERT INTO staff_tokens (name, token_sha256) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind::<Text, _>(name)
    .bind::<Text, _>(token_sha256)
    .execute(&mut conn)
    .await
    .map_err(StoreError::from)?;
    if inserted == 0 {
        return Err(AddError::Taken(name.to_string()));
    }
    Ok(())
}

/// A staff token as `mamochi staff list` shows it (never the digest).
#[derive(Debug, QueryableByName)]
pub struct StaffToken {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Every token, oldest first.
pub async fn list(pool: &PgPool) -> Result<Vec<StaffToken>, StoreError> {
    let mut conn = connection(pool).await?;
    Ok(diesel::sql_query("SELECT name, created_at, revoked_at FROM staff_tokens ORDER BY created_at, name")
        .load(&mut conn)
        .await?)
}

/// Revokes the token named `name`; `false` if there is none. Revoking a
/// revoked token keeps its first revocation time.
pub async fn revoke(pool: &PgPool, name: &str) -> Result<bool, StoreError> {
    let mut conn = connection(pool).await?;
    let updated = diesel::sql_query("UPDATE staff_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE name = $1")
        .bind::<Text, _>(name)
        .execute(&mut conn)
        .await?;
    Ok(updated > 0)
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The name of the unrevoked token whose digest is `token_sha256`, if any.
pub async fn by_digest(pool: &PgPool, token_sha256: &str) -> Result<Option<String>, StoreError> {
    let mut conn = connection(pool).await?;
    let rows: Vec<Name> =
        diesel::sql_query("SELECT name FROM staff_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL")
            .bind::<Text, _>(token_sha256)
            .load(&mut conn)
            .await?;
    Ok(rows.into_iter().next().map(|row| row.name))
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names_are_short_lowercase_handles() {
        for good in ["ana", "ana.rojas", "staff-2", "0day_ops", &"a".repeat(63)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "Ana", "-ana", ".ana", "ana rojas", "añá", &"a".repeat(64)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
