//! The sales consumer loop: takes what the consumer has already buffered (up
//! to a batch limit, never waiting for more) and applies it in one database
//! transaction, under the platform's one error policy
//! ([`mamochi_events::failure`], [`Poller`]).
//!
//! Guarantee: at least once, exactly once in effect. Offsets are stored only
//! after the batch's transaction committed (or its records were parked in
//! the dead letters). A transient failure retries the same batch with
//! backoff while the assignment is paused and the consumer keeps polling, so
//! a partition never skips ahead and the group never evicts us. A batch that
//! fails permanently (a value PostgreSQL refuses, a constraint violation) is
//! split until the poison sale is alone; it is parked (reason and provenance
//! headers, counted) and every other sale applies. A crash re-delivers at
//! most the records whose offsets were not yet committed, and the dedupe in
//! [`crate::store`] makes their second application a no-op. Throughput comes
//! from amortising one commit over many records: one dedupe insert, one row
//! lock and one update statement per batch, not per sale.

use std::time::Instant;

use futures::FutureExt;
use mamochi_common::kafka::{self, CommittingConsumer};
use mamochi_common::shutdown::Shutdown;
use mamochi_events::failure::{self, reasons, Failure};
use mamochi_events::poller::Poller;
use mamochi_events::runner::{store_offset, Runner};
use mamochi_events::{topics, SaleRecorded};
use rdkafka::message::{BorrowedMessage, Message};

use crate::ledger::Ledger;
use crate::sale::SaleFacts;
use crate::store::StoreError;

/// Consumes sales until `shutdown` is cancelled, then commits and returns;
/// applies at most `max_batch` records per transaction.
pub async fn run(
    consumer: &CommittingConsumer,
    runner: &Runner,
    ledger: &Ledger,
    max_batch: usize,
    shutdown: &Shutdown,
) {
    let max_batch = max_batch.max(1);
    let poller = Poller::new(consumer);
    while let Some(batch) = poller.next_batch(shutdown, max_batch).await {
        if !apply_batch(&batch, runner, ledger, &poller, shutdown).await {
            break;
        }
        for message in &batch {
            store_offset(consumer, message);
        }
    }
    kafka::commit_stored_offsets(consumer);
}

/// The platform's error policy applied to accounting's store.
pub fn classify(error: &StoreError) -> Failure {
    match error {
        StoreError::Database(error) => failure::database(error),
        // A pool timeout, or a week closed by the closer while a late sale
        // was moved into it: the next try sees the new state.
        other => Failure::transient(other),
    }
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
    ledger: &Ledger,
    poller: &Poller<'_>,
    shutdown: &Shutdown,
) -> bool {
    let started = Instant::now();
    let topic = topics::SALES.name();
    runner.metrics.consumed.with_label_values(&[topic]).inc_by(batch.len() as u64);
    let mut sales = Vec::with_capacity(batch.len());
    let mut sources = Vec::with_capacity(batch.len());
    for message in batch {
        let Some(decoded) = runner.decode::<SaleRecorded>(poller, shutdown, message).await else {
            return false;
        };
        let Some(sale) = decoded else {
            continue;
        };
        match SaleFacts::from_event(&sale) {
            Ok(facts) => {
                // Where it was read moves its partition's watermark (see
                // `crate::horizon`) in the same transaction as its count.
                sales.push(facts.at(message.partition(), message.offset()));
                sources.push(message);
            }
            Err(invalid) => {
                ledger.metrics.sales_rejected.with_label_values(&["invalid"]).inc();
                if !runner.park(poller, shutdown, message, reasons::INVALID_DATA, &invalid).await {
                    return false;
                }
            }
        }
    }
    let what = "apply a batch of sales";
    let isolated = poller
        .isolate(runner.backoff, shutdown, what, &sales, |chunk| {
            ledger.apply(chunk).map(|result| result.map_err(|error| classify(&error)))
        })
        .await;
    let Some(isolated) = isolated else {
        return false;
    };
    for (index, failure) in &isolated.poison {
        let Some(message) = sources.get(*index) else { continue };
        ledger.metrics.sales_rejected.with_label_values(&["invalid"]).inc();
        let reason = match failure {
            Failure::Permanent { reason, .. } => reason,
            Failure::Transient(_) => reasons::HANDLER_REJECTED,
        };
        if !runner.park(poller, shutdown, message, reason, failure).await {
            return false;
        }
    }
    for (_, outcome) in &isolated.done {
        for sale_id in &outcome.overflowed {
            ledger.metrics.sales_rejected.with_label_values(&["overflow"]).inc();
            let source = sales.iter().position(|sale| sale.sale_id == *sale_id).and_then(|index| sources.get(index));
            if let Some(message) = source {
                let reason = "the week's totals would overflow 64-bit integers";
                if !runner.park(poller, shutdown, message, reasons::INVALID_DATA, &reason).await {
                    return false;
                }
            }
        }
    }
    let handle_seconds = runner.metrics.handle_seconds.with_label_values(&[topic]);
    let elapsed = started.elapsed().as_secs_f64();
    for _ in batch {
        handle_seconds.observe(elapsed);
    }
    true
}
