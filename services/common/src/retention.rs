//! Pruning of bookkeeping rows that only exist to absorb redeliveries: a
//! consumer's dedupe rows in `processed_events` and the notifier's finished
//! (`sent` or `failed`) rows in `emails`.
//!
//! What is kept and for how long is the caller's [`Rule`] list; the periods
//! themselves are decided from the topic catalog by `mamochi`'s retention
//! policy, which is the one place that knows which consumer reads which
//! topic. This module only guarantees how rows go:
//!
//! - a row is deleted only once it is older than its rule's `keep`, measured
//!   on the database's own clock (`now()`, the same clock that stamped it),
//!   never on platform time, which a demo speeds up;
//! - `pending` emails are never deleted, however old;
//! - deletes run in chunks of at most `chunk_rows` rows, one short
//!   statement each, so pruning a year of backlog never holds long locks or
//!   one huge transaction next to the consumers' batched inserts;
//! - a failed pass is logged and tried again at the next tick: pruning is
//!   housekeeping and never stops the process that runs it.

use std::time::Duration;

use diesel::sql_types::{BigInt, Double, Text};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::db::PgPool;
use crate::shutdown::Shutdown;

/// `[retention]` settings: how often and how fast rows are pruned (how long
/// they are kept comes from the topic catalog, not from here).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RetentionSettings {
    /// Real seconds between two pruning passes.
    pub prune_interval_secs: u64,
    /// Most rows one delete statement removes.
    pub chunk_rows: u32,
}

/// Which rows a rule prunes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows {
    /// `processed_events` rows of one consumer (its dedupe name).
    ProcessedEvents { consumer: String },
    /// `emails` rows whose status is `sent` or `failed`.
    FinishedEmails,
}

/// Rows to prune once they are older than `keep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub rows: Rows,
    pub keep: Duration,
}

impl Rule {
    /// Dedupe rows of `consumer`, kept for `keep`.
    pub fn processed_events(consumer: impl Into<String>, keep: Duration) -> Self {
        Self { rows: Rows::ProcessedEvents { consumer: consumer.into() }, keep }
    }

    /// Finished email records, kept for `keep`.
    pub fn finished_emails(keep: Duration) -> Self {
        Self { rows: Rows::FinishedEmails, keep }
    }

    /// A short label for logs.
    pub fn label(&self) -> String {
        match &self.rows {
            Rows::ProcessedEvents { consumer } => format!("processed_events[{consumer}]"),
            Rows::FinishedEmails => "emails[sent|failed]".to_string(),
        }
    }
}

/// Why a pruning pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("connection pool: {0}")]
    Pool(String),
    #[error("while pruning {rule}: {source}")]
    Delete {
        rule: String,
        #[source]
        source: diesel::result::Error,
    },
}

/// Deletes every row older than its rule, `chunk_rows` rows per statement;
/// returns how many rows each rule deleted, in `rules` order.
pub async fn prune_once(pool: &PgPool, rules: &[Rule], chunk_rows: u32) -> Result<Vec<usize>, RetentionError> {
    let mut conn = pool.get().await.map_err(|error| RetentionError::Pool(error.to_string()))?;
    let chunk = i64::from(chunk_rows.max(1));
    let mut deleted = Vec::with_capacity(rules.len());
    for rule in rules {
        let seconds = rule.keep.as_secs_f64();
        let mut total = 0;
        loop {
            let statement = match &rule.rows {
                // Served by the (consumer, processed_at) index of migration
                // 2026-12-01-000005.
                Rows::ProcessedEvents { consumer } => {
                    diesel::sql_query(
                        "DELETE FROM processed_events WHERE (consumer, event_id) IN ( \
                       SELECT consumer, event_id FROM processed_events \
                       WHERE consumer = $1 AND processed_at < now() - make_interval(secs => $2) \
                       LIMIT $3)",
                    )
                    .bind::<Text, _>(consumer.as_str())
                    .bind::<Double, _>(seconds)
                    .bind::<BigInt, _>(chunk)
                    .execute(&mut conn)
                    .await
                }
                // `created_at` is when the row was first written (database
                // time); `requested_at` and `sent_at` are platform time.
                Rows::FinishedEmails => {
                    diesel::sql_query(
                        "DELETE FROM emails WHERE message_id IN ( \
                       SELECT message_id FROM emails \
                       WHERE status IN ('sent', 'failed') \
                         AND created_at < now() - make_interval(secs => $1) \
                       LIMIT $2)",
                    )
                    .bind::<Double, _>(seconds)
                    .bind::<BigInt, _>(chunk)
                    .execute(&mut conn)
                    .await
                }
            };
            let rows = statement.map_err(|source| RetentionError::Delete { rule: rule.label(), source })?;
            total += rows;
            if i64::try_from(rows).unwrap_or(i64::MAX) < chunk {
                break;
            }
        }
        deleted.push(total);
    }
    Ok(deleted)
}

/// Prunes `rules` every `settings.prune_interval_secs` (the first pass at
/// once) until `shutdown`; errors are logged and the next tick tries again.
pub async fn run(pool: PgPool, rules: Vec<Rule>, settings: RetentionSettings, shutdown: Shutdown) {
    if rules.is_empty() {
        return;
    }
    let mut every = tokio::time::interval(Duration::from_secs(settings.prune_interval_secs.max(1)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let pass = tokio::select! {
            () = shutdown.cancelled() => return,
            pass = prune_once(&pool, &rules, settings.chunk_rows) => pass,
        };
        match pass {
            Ok(deleted) => {
                for (rule, rows) in rules.iter().zip(deleted) {
                    if rows > 0 {
                        tracing::info!(
                            rows = rule.label(),
                            deleted = rows,
                            keep_secs = rule.keep.as_secs(),
                            "expired rows pruned"
                        );
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "could not prune expired rows; trying again at the next tick"),
        }
    }
}
