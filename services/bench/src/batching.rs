//! Before and after batching accounting's transactions, in the same run on
//! the same database: the same number of fresh sales for the bench vendors
//! applied through accounting's own store ([`store::apply_sales`]), first one
//! sale per transaction (how accounting applied sales before
//! `accounting.max_batch`), then in batches of `accounting.max_batch`.
//!
//! It calls the store directly, without Kafka, so the figure isolates what
//! the change is about: a commit (an fsync of PostgreSQL's log) per sale
//! versus one per batch. The consumer's own rate, with Kafka in the path, is
//! the burst stage's.

use std::time::Instant;

use anyhow::Context;
use chrono::Duration;
use mamochi_accounting::sale::SaleFacts;
use mamochi_accounting::store;
use mamochi_common::db::PgPool;
use uuid::Uuid;

use crate::progress::Progress;
use crate::raw_kafka;
use crate::results::BatchingRun;

/// Applies `count` sales one per transaction, then `count` more in batches
/// of `batch_size`, and reports both rates.
pub async fn compare(
    pool: &PgPool,
    vendors: &[Uuid],
    count: u64,
    batch_size: usize,
    grace: Duration,
    progress: &Progress,
) -> anyhow::Result<BatchingRun> {
    let batch_size = batch_size.max(1);
    progress.set_length(2 * count);
    progress.set_message("one sale per transaction");
    let one_by_one_s = apply(pool, &fresh_sales(count, vendors)?, 1, grace, progress).await?;
    progress.set_message(format!("batches of {batch_size}"));
    let batched_s = apply(pool, &fresh_sales(count, vendors)?, batch_size, grace, progress).await?;
    let rate = |seconds: f64| count as f64 / seconds.max(1e-9);
    Ok(BatchingRun {
        sales: count,
        batch_size,
        one_by_one_s,
        one_by_one_per_s: rate(one_by_one_s),
        batched_s,
        batched_per_s: rate(batched_s),
    })
}

/// Sales as accounting sees them, each with a new id (so none is a duplicate).
fn fresh_sales(count: u64, vendors: &[Uuid]) -> anyhow::Result<Vec<SaleFacts>> {
    (0..count)
        .map(|index| {
            let (_, sale) = raw_kafka::sample_sale(index, vendors);
            SaleFacts::from_event(&sale).context("while building a sample sale")
        })
        .collect()
}

/// Seconds to apply `sales` in chunks of `batch_size`, one transaction each.
async fn apply(
    pool: &PgPool,
    sales: &[SaleFacts],
    batch_size: usize,
    grace: Duration,
    progress: &Progress,
) -> anyhow::Result<f64> {
    let mut conn = pool.get().await.context("while taking a database connection")?;
    let started = Instant::now();
    for chunk in sales.chunks(batch_size) {
        let outcome = store::apply_sales(&mut conn, chunk, chrono::Utc::now(), grace)
            .await
            .context("while applying sales through accounting's store")?;
        anyhow::ensure!(
            outcome.counted.len() == chunk.len(),
            "accounting counted {} of {} fresh sales",
            outcome.counted.len(),
            chunk.len()
        );
        progress.inc(chunk.len() as u64);
    }
    Ok(started.elapsed().as_secs_f64())
}
