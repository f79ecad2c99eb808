//! The sales consumer loop: takes what the consumer has already buffered (up
//! to a batch limit, never waiting for more) and applies it in one database
//! transaction ([`SaleApplier::apply`]).
//!
//! Guarantee: at least once, exactly once in effect. Offsets are stored only
//! after the batch's transaction committed (or its refused records were
//! parked in the dead letters); a failure retries the same batch with
//! backoff, so a partition never skips ahead. A crash re-delivers at most the
//! records whose offsets were not yet committed, and the dedupe rows make
//! their second application a no-op. A sale of zero or fewer servings, or of
//! a vendor who is not a member, is parked and the rest of the batch applies.

use std::fmt::Display;
use std::future::Future;
use std::time::Instant;

use futures::{FutureExt, StreamExt};
use mamochi_common::kafka::{self, CommittingConsumer};
use mamochi_common::shutdown::Shutdown;
use mamochi_events::consume::{decode_or_park, Decoded};
use mamochi_events::runner::{Backoff, Runner};
use mamochi_events::{topics, SaleRecorded};
use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Message};

use crate::rules;
use crate::sales::SaleApplier;

/// Consumes sales until `shutdown` is cancelled, then commits and returns;
/// applies at most `max_batch` records per transaction.
pub async fn run(
    consumer: &CommittingConsumer,
    runner: &Runner,
    applier: &SaleApplier,
    max_batch: usize,
    shutdown: &Shutdown,
) {
    let max_batch = max_batch.max(1);
    let mut stream = consumer.stream();
    loop {
        let first = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            next = stream.next() => next,
        };
        let first = match first {
            Some(Ok(message)) => message,
            Some(Err(error)) => {
                tracing::warn!(%error, "consumer reported an error; librdkafka retries by itself");
                continue;
            }
            None => break,
        };
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match stream.next().now_or_never() {
                Some(Some(Ok(message))) => batch.push(message),
                Some(Some(Err(error))) => {
                    tracing::warn!(%error, "consumer reported an error; librdkafka retries by itself");
                    break;
                }
                _ => break,
            }
        }
        if !apply_batch(&batch, runner, applier, shutdown).await {
            break;
        }
        for message in &batch {
            if let Err(error) = consumer.store_offset_from_message(message) {
                // The partition moved to another consumer during the batch;
                // it re-reads from the last commit and the dedupe skips ours.
                tracing::warn!(%error, partition = message.partition(), offset = message.offset(), "offset not stored");
            }
        }
    }
    kafka::commit_stored_offsets(consumer);
}

/// Decodes, validates and applies a batch; `false` if shutdown interrupted
/// it (nothing of it may then be stored).
#[tracing::instrument(name = "apply_sales_batch", skip_all, fields(
    topic = batch.first().map(|m| m.topic()).unwrap_or_default(),
    records = batch.len(),
    first_offset = batch.first().map(|m| m.offset()).unwrap_or_default(),
))]
async fn apply_batch(
    batch: &[BorrowedMessage<'_>],
    runner: &Runner,
    applier: &SaleApplier,
    shutdown: &Shutdown,
) -> bool {
    let started = Instant::now();
    let topic = topics::SALES.name();
    runner.metrics.consumed.with_label_values(&[topic]).inc_by(batch.len() as u64);
    let mut sales = Vec::with_capacity(batch.len());
    let mut sources = Vec::with_capacity(batch.len());
    for message in batch {
        let decode = || decode_or_park::<SaleRecorded>(&runner.codec, &runner.dead_letters, message);
        let Some(decoded) = retry(runner.backoff, shutdown, "decode a sale", decode).await else {
            return false;
        };
        let Decoded::Event(sale) = decoded else {
            continue;
        };
        // Refuse impossible sales before touching anything.
        if let Err(invalid) = rules::check_quantity(sale.quantity) {
            if !park(runner, shutdown, message, &invalid).await {
                return false;
            }
            continue;
        }
        sales.push(sale);
        sources.push(message);
    }
    let Some(outcome) = retry(runner.backoff, shutdown, "apply a batch of sales", || applier.apply(&sales)).await
    else {
        return false;
    };
    for sale_id in &outcome.unknown_vendor {
        let index = sales.iter().position(|sale| sale.sale_id == *sale_id);
        if let Some((sale, message)) = index.and_then(|index| sales.get(index).zip(sources.get(index))) {
            let reason = format!("vendor {} is not a member", sale.vendor_id);
            if !park(runner, shutdown, message, &reason).await {
                return false;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let handle_seconds = runner.metrics.handle_seconds.with_label_values(&[topic]);
    for _ in batch {
        handle_seconds.observe(elapsed);
    }
    tracing::debug!(
        applied = outcome.applied.len(),
        duplicates = outcome.duplicates,
        refused = outcome.unknown_vendor.len(),
        "sales batch committed"
    );
    true
}

/// Parks a record the distributor refuses, as the shared runner does.
async fn park(
    runner: &Runner,
    shutdown: &Shutdown,
    message: &BorrowedMessage<'_>,
    reason: &(dyn Display + Sync),
) -> bool {
    tracing::warn!(partition = message.partition(), offset = message.offset(), %reason, "sale refused; parking it");
    let attempt = || runner.dead_letters.park(message, "handler_rejected", reason);
    retry(runner.backoff, shutdown, "park a refused sale", attempt).await.is_some()
}

/// Retries `attempt` with capped exponential backoff until it succeeds
/// (`Some`) or shutdown is requested (`None`).
async fn retry<T, E, F>(backoff: Backoff, shutdown: &Shutdown, what: &str, mut attempt: impl FnMut() -> F) -> Option<T>
where
    E: Display,
    F: Future<Output = Result<T, E>>,
{
    let mut delay = backoff.first;
    loop {
        match attempt().await {
            Ok(value) => return Some(value),
            Err(error) => {
                tracing::warn!(%error, what, retry_in_ms = delay.as_millis() as u64, "failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(delay) => {},
                }
                delay = (delay * 2).min(backoff.max);
            }
        }
    }
}
