//! PostgreSQL access: an async connection pool and the embedded migrations.
//!
//! Migrations live in the workspace's `migrations/` directory and are compiled
//! into the binary; they run only through the explicit `mamochi migrate` step,
//! never silently at service start, so a deploy controls when schema changes.

use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::config::DatabaseSettings;

/// The migrations of `migrations/`, embedded at build time.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// A pool of async PostgreSQL connections.
pub type PgPool = Pool<AsyncPgConnection>;

/// Why the database could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("could not build the connection pool: {0}")]
    Pool(String),
    #[error("could not connect to PostgreSQL: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("migration task panicked")]
    Join(#[from] tokio::task::JoinError),
}

/// Builds the pool; connections are opened lazily on first use.
pub fn pool(settings: &DatabaseSettings) -> Result<PgPool, DbError> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(settings.url());
    Pool::builder(manager)
        .max_size(settings.pool_size)
        .build()
        .map_err(|error| DbError::Pool(error.to_string()))
}

/// Applies every pending migration and returns the versions applied.
///
/// The harness is synchronous, so it runs on a blocking thread over the
/// async connection wrapped as a sync one.
pub async fn run_migrations(settings: &DatabaseSettings) -> Result<Vec<String>, DbError> {
    use diesel_async::AsyncConnection;
    let connection = AsyncPgConnection::establish(settings.url()).await?;
    let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(connection);
    let applied = tokio::task::spawn_blocking(move || {
        wrapper
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(|error| DbError::Migration(error.to_string()))
    })
    .await??;
    Ok(applied)
}
