//! The gateway's PostgreSQL work. It writes only these: the
//! `registrations` row of a form it just published (the approval service
//! upserts the same row from the event), the `payment_references` claim a
//! paid form makes before it is published (both in [`registrations`]), the
//! `sale_requests` idempotency claims it owns, the key columns of an
//! existing member (rotation, staff revocation and re-issue, in
//! [`members`]) and, through `mamochi staff`, the `staff_tokens` it reads
//! ([`staff`]). Everything else is a read of another service's projection
//! (the write path reads them through the in-memory views in
//! [`crate::views`]). Every wait for a connection is bounded, so a saturated
//! pool answers 503 instead of queueing requests.

pub mod accounting;
pub mod members;
pub mod registrations;
pub mod sale_requests;
pub mod staff;

use std::time::Duration;

use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::AsyncPgConnection;
use mamochi_common::db::PgPool;

/// Why a database step failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no database connection: {0}")]
    Pool(String),
    #[error("query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// A batched statement failed for every request in it.
    #[error("batched write failed: {0}")]
    Failed(String),
    /// Over capacity: the request was not queued, or not answered in time.
    #[error("over capacity: {0}")]
    Busy(String),
}

/// Longest wait for a pooled connection.
const CONNECTION_WAIT: Duration = Duration::from_secs(2);

/// A pooled connection, or [`StoreError::Busy`] after [`CONNECTION_WAIT`].
pub async fn connection(pool: &PgPool) -> Result<Object<AsyncPgConnection>, StoreError> {
    match tokio::time::timeout(CONNECTION_WAIT, pool.get()).await {
        Ok(connection) => connection.map_err(|error| StoreError::Pool(error.to_string())),
        Err(_) => Err(StoreError::Busy(format!("no database connection within {} ms", CONNECTION_WAIT.as_millis()))),
    }
}

/// Whether PostgreSQL answers a trivial query (readiness).
pub async fn ping(pool: &PgPool) -> Result<(), StoreError> {
    use diesel_async::RunQueryDsl;
    let mut conn = connection(pool).await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}
