//! The gateway's PostgreSQL work. It writes only two things: the
//! `registrations` row of a form it just published (the approval service
//! upserts the same row from the event) and the `sale_requests` idempotency
//! claims it owns. Everything else is a read of another service's projection.

pub mod accounting;
pub mod members;
pub mod registrations;
pub mod sale_requests;

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
}

/// A pooled connection.
pub async fn connection(pool: &PgPool) -> Result<Object<AsyncPgConnection>, StoreError> {
    pool.get().await.map_err(|error| StoreError::Pool(error.to_string()))
}

/// Whether PostgreSQL answers a trivial query (readiness).
pub async fn ping(pool: &PgPool) -> Result<(), StoreError> {
    use diesel_async::RunQueryDsl;
    let mut conn = connection(pool).await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}
