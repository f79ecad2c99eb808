//! The distributor's outbox (Debezium's outbox pattern): the records a stock
//! change or a cart incident derives are written to `distributor_outbox` in
//! the same transaction as the change, and produced to Kafka only after that
//! transaction commits.
//!
//! Guarantees:
//! - A derived record exists if and only if its stock change committed: both
//!   are in one transaction ([`insert`]).
//! - No committed record is lost: a row is deleted only after Kafka
//!   acknowledged it (`acks=all`). Rows left by a crash between commit and
//!   produce are produced by the [`Relay`] when the service starts and on a
//!   short timer.
//! - Per-vendor order: every writer inserts its rows while holding the cart's
//!   row lock, so for one vendor `seq` order is commit order; the relay
//!   produces in `seq` order, and only one relay in the whole platform does
//!   so at a time (a transaction-scoped advisory lock), so no older record of
//!   a vendor can overtake a newer one on its partition.
//!
//! Limit: a crash after Kafka acknowledged a row but before its delete
//! committed produces it again. Derived ids are deterministic (see
//! [`crate::derived`]), so readers deduplicate stock events and emails; a
//! repeated cart level is the same level again, followed by every newer one.

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::{Array, BigInt, Bool, Jsonb, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use mamochi_common::db::PgPool;
use mamochi_common::shutdown::Shutdown;
use mamochi_events::publish::PublishError;
use mamochi_events::{CartAlarm, CartStockLevel, EmailRequested, StockEvent};
use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::publisher::OutboxPublisher;

/// How often the relay looks for rows nobody announced (another process's
/// leftovers, or a wake-up lost to a failed attempt).
pub const RELAY_INTERVAL: Duration = Duration::from_millis(500);
/// Most rows produced per relay round.
const RELAY_BATCH: i64 = 10_000;
/// Advisory lock key that lets one relay at a time produce ("mamochi" + 1).
const RELAY_LOCK: i64 = 0x6d61_6d6f_6368_6901;
/// PostgreSQL ends a relay's session that sits this long inside its round
/// (a frozen or cut-off process), releasing the lock for the other relays.
/// Longer than the producer's delivery timeout (`kafka.message_timeout_ms`,
/// 120 s by default), so a healthy round waiting on Kafka fails by itself
/// first, and records of an ended round cannot still be delivered after the
/// next relay's.
const RELAY_HOLD_LIMIT: &str = "300s";

/// One derived record waiting to be produced.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxRecord {
    /// LOW_STOCK, DEPLETED or REPLENISHED, for `mamochi.stock`.
    Stock(StockEvent),
    /// A low-stock or restock email, for `mamochi.email-requests`.
    Email(EmailRequested),
    /// A cart's new level, for the compacted `mamochi.cart-stock`.
    Level(CartStockLevel),
    /// A cart incident raised or cleared, for `mamochi.cart-alarms`.
    Alarm(CartAlarm),
}

/// Why the outbox could not be written or relayed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("connection pool: {0}")]
    Pool(String),
    #[error("outbox row {seq} of kind {kind:?} is unreadable: {reason}")]
    Unreadable { seq: i64, kind: String, reason: String },
    #[error("could not encode an outbox record as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl OutboxRecord {
    /// The `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stock(_) => "stock",
            Self::Email(_) => "email",
            Self::Level(_) => "level",
            Self::Alarm(_) => "alarm",
        }
    }

    fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self {
            Self::Stock(event) => serde_json::to_value(event),
            Self::Email(request) => serde_json::to_value(request),
            Self::Level(level) => serde_json::to_value(level),
            Self::Alarm(alarm) => serde_json::to_value(alarm),
        }
    }

    fn from_row(row: Row) -> Result<(i64, Self), OutboxError> {
        let unreadable = |reason: String| OutboxError::Unreadable { seq: row.seq, kind: row.kind.clone(), reason };
        let record = match row.kind.as_str() {
            "stock" => serde_json::from_value(row.record.clone()).map(Self::Stock),
            "email" => serde_json::from_value(row.record.clone()).map(Self::Email),
            "level" => serde_json::from_value(row.record.clone()).map(Self::Level),
            "alarm" => serde_json::from_value(row.record.clone()).map(Self::Alarm),
            other => return Err(unreadable(format!("unknown kind {other}"))),
        }
        .map_err(|error| unreadable(error.to_string()))?;
        Ok((row.seq, record))
    }
}

/// Writes `records`, in order, on the caller's open transaction.
pub async fn insert(conn: &mut AsyncPgConnection, records: &[OutboxRecord]) -> Result<(), OutboxError> {
    if records.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = records.iter().map(OutboxRecord::kind).collect();
    let values = records.iter().map(OutboxRecord::to_json).collect::<Result<Vec<_>, _>>()?;
    // WITH ORDINALITY + ORDER BY: `seq` follows the order the rules produced.
    diesel::sql_query(
        "INSERT INTO distributor_outbox (kind, record) \
         SELECT kind, record FROM unnest($1::text[], $2::jsonb[]) WITH ORDINALITY AS r(kind, record, n) \
         ORDER BY n",
    )
    .bind::<Array<Text>, _>(kinds)
    .bind::<Array<Jsonb>, _>(values)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Jsonb)]
    record: serde_json::Value,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Produces committed outbox rows in `seq` order and deletes them once
/// acknowledged. Cheap to clone; clones share the wake-up signal.
#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    publisher: OutboxPublisher,
    metrics: Metrics,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").finish_non_exhaustive()
    }
}

impl Relay {
    pub fn new(pool: PgPool, publisher: OutboxPublisher, metrics: Metrics) -> Self {
        Self { pool, publisher, metrics, wake: Arc::new(Notify::new()) }
    }

    /// Says that a transaction with outbox rows just committed.
    pub fn committed(&self) {
        self.wake.notify_one();
    }

    /// Drains the outbox at once, then whenever a commit is announced or
    /// [`RELAY_INTERVAL`] passes, until `shutdown`; then drains once more so
    /// a clean stop leaves nothing behind.
    pub async fn run(&self, shutdown: &Shutdown) {
        loop {
            if let Err(error) = self.drain().await {
                tracing::warn!(%error, "outbox not relayed yet; retrying");
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = self.wake.notified() => {},
                () = tokio::time::sleep(RELAY_INTERVAL) => {},
            }
        }
        if let Err(error) = self.drain().await {
            tracing::warn!(%error, "outbox rows left for the next start");
        }
    }

    /// Produces and deletes every committed row, oldest first. Returns how
    /// many rows it relayed (0 when another process holds the relay lock).
    pub async fn drain(&self) -> Result<usize, OutboxError> {
        let mut total = 0;
        loop {
            let relayed = self.round().await?;
            self.metrics.outbox_relayed.inc_by(relayed as u64);
            total += relayed;
            if relayed < RELAY_BATCH as usize {
                return Ok(total);
            }
        }
    }

    /// One round: lock, read up to [`RELAY_BATCH`] rows, produce them all
    /// (sends started together, acknowledgements awaited together), delete
    /// them, commit. The transaction holds only the advisory lock, never a
    /// cart row, so producing inside it stalls no sale.
    async fn round(&self) -> Result<usize, OutboxError> {
        let mut conn = self.pool.get().await.map_err(|error| OutboxError::Pool(error.to_string()))?;
        conn.transaction::<_, OutboxError, _>(async |conn| {
            let lock = diesel::sql_query(
                "SELECT set_config('idle_in_transaction_session_timeout', $2, true) IS NOT NULL \
                 AND pg_try_advisory_xact_lock($1) AS locked",
            )
            .bind::<BigInt, _>(RELAY_LOCK)
            .bind::<Text, _>(RELAY_HOLD_LIMIT)
            .get_result::<Locked>(conn)
            .await?;
            if !lock.locked {
                return Ok(0);
            }
            let rows = diesel::sql_query("SELECT seq, kind, record FROM distributor_outbox ORDER BY seq LIMIT $1")
                .bind::<BigInt, _>(RELAY_BATCH)
                .load::<Row>(conn)
                .await?;
            if rows.is_empty() {
                return Ok(0);
            }
            let (seqs, records): (Vec<i64>, Vec<OutboxRecord>) =
                rows.into_iter().map(OutboxRecord::from_row).collect::<Result<Vec<_>, _>>()?.into_iter().unzip();
            self.publisher.publish_in_order(&records).await?;
            diesel::sql_query("DELETE FROM distributor_outbox WHERE seq = ANY($1)")
                .bind::<Array<BigInt>, _>(&seqs)
                .execute(conn)
                .await?;
            Ok(seqs.len())
        })
        .await
    }
}
