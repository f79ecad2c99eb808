//! PostgreSQL access: an async connection pool and the embedded migrations.
//!
//! Migrations live in the workspace's `migrations/` directory and are compiled
//! into the binary; they run only through the explicit `mamochi migrate` step,
//! never silently at service start, so a deploy controls when schema changes.
//!
//! Every connection, pooled or for migrations, is opened by [`connect`]: with
//! libpq's `sslmode=require`, `verify-ca` or `verify-full` in the URL it is
//! TLS or nothing (see [`crate::db_tls`]); without them it is plain TCP.

use diesel::ConnectionError;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::config::DatabaseSettings;
use crate::db_tls::{self, TlsUrl};

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
    #[error("invalid TLS settings in the database URL: {0}")]
    Tls(#[from] db_tls::TlsError),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("migration task panicked")]
    Join(#[from] tokio::task::JoinError),
}

/// Builds the pool; connections are opened lazily on first use. A URL whose
/// TLS settings are wrong (unknown `sslmode`, unreadable CA file) fails here,
/// at start, rather than at the first query.
pub fn pool(settings: &DatabaseSettings) -> Result<PgPool, DbError> {
    // Parsed once so a bad CA file is reported now; each connection re-reads
    // nothing but the parsed form.
    TlsUrl::parse(settings.url())?;
    let mut config = ManagerConfig::default();
    config.custom_setup = Box::new(|url| Box::pin(connect(url.to_string())));
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(settings.url(), config);
    Pool::builder(manager).max_size(settings.pool_size).build().map_err(|error| DbError::Pool(error.to_string()))
}

/// Opens one connection to `url`, over TLS when the URL asks for it.
pub async fn connect(url: String) -> diesel::ConnectionResult<AsyncPgConnection> {
    use diesel_async::AsyncConnection;
    let parsed = TlsUrl::parse(&url).map_err(|error| ConnectionError::BadConnection(error.to_string()))?;
    match parsed.tls {
        None => AsyncPgConnection::establish(&parsed.url).await,
        Some(tls) => {
            let (client, connection) = tokio_postgres::connect(&parsed.url, tls.connector())
                .await
                .map_err(|error| ConnectionError::BadConnection(error.to_string()))?;
            AsyncPgConnection::try_from_client_and_connection(client, connection).await
        }
    }
}

/// Applies every pending migration and returns the versions applied.
///
/// The harness is synchronous, so it runs on a blocking thread over the
/// async connection wrapped as a sync one (opened like every other, so
/// migrations travel over TLS too).
pub async fn run_migrations(settings: &DatabaseSettings) -> Result<Vec<String>, DbError> {
    let connection = connect(settings.url().to_string()).await?;
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
