//! The sales consumer loop: takes what the consumer has already buffered (up
//! to a batch limit, never waiting for more) and applies it in one database
//! transaction ([`SaleApplier::apply`]), under the platform's one error
//! policy ([`mamochi_events::failure`], [`Poller`]).
//!
//! Guarantee: at least once, exactly once in effect. Offsets are stored only
//! after the batch's transaction committed (or its refused records were
//! parked in the dead letters). A transient failure retries the same batch
//! with backoff while the assignment is paused and the consumer keeps
//! polling, so a partition never skips ahead and the group never evicts us.
//! A batch that fails permanently is split until the poison sale is alone;
//! that sale is parked (reason and provenance headers, counted) and every
//! other sale of the batch applies, so one vendor's bad record delays other
//! vendors by a few transactions at most. A crash re-delivers at most the
//! records whose offsets were not yet committed, and the dedupe rows make
//! their second application a no-op. A sale of zero or fewer servings, or of
//! a vendor who is not a member, is parked and the rest of the batch applies.

use std::time::Instant;

use futures::FutureExt;
use mamochi_common::kafka::{self, CommittingConsumer};
use mamochi_common::shutdown::Shutdown;
use mamochi_events::failure::reasons;
use mamochi_events::poller::Poller;
use mamochi_events::runner::{store_offset, Runner};
use mamochi_events::{topics, SaleRecorded};
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
    let poller = Poller::new(consumer);
    while let Some(batch) = poller.next_batch(shutdown, max_batch).await {
        if !apply_batch(&batch, runner, applier, &poller, shutdown).await {
            break;
        }
        for message in &batch {
            store_offset(consumer, message);
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
        // Refuse impossible sales before touching anything.
        if let Err(invalid) = rules::check_quantity(sale.quantity) {
            if !runner.park(poller, shutdown, message, reasons::INVALID_DATA, &invalid).await {
                return false;
            }
            continue;
        }
        sales.push(sale);
        sources.push(message);
    }
    let what = "apply a batch of sales";
    let isolated = poller
        .isolate(runner.backoff, shutdown, what, &sales, |chunk| {
            applier.apply(chunk).map(|result| result.map_err(|error| error.failure()))
        })
        .await;
    let Some(isolated) = isolated else {
        return false;
    };
    for (index, failure) in &isolated.poison {
        let Some(message) = sources.get(*index) else { continue };
        let reason = match failure {
            mamochi_events::failure::Failure::Permanent { reason, .. } => reason,
            mamochi_events::failure::Failure::Transient(_) => reasons::HANDLER_REJECTED,
        };
        if !runner.park(poller, shutdown, message, reason, failure).await {
            return false;
        }
    }
    let (mut applied, mut duplicates, mut refused) = (0, 0, 0);
    for (range, outcome) in &isolated.done {
        applied += outcome.applied.len();
        duplicates += outcome.duplicates;
        refused += outcome.unknown_vendor.len();
        for sale_id in &outcome.unknown_vendor {
            let index = range.clone().find(|&index| sales.get(index).is_some_and(|sale| sale.sale_id == *sale_id));
            if let Some((sale, message)) = index.and_then(|index| sales.get(index).zip(sources.get(index))) {
                let reason = format!("vendor {} is not a member", sale.vendor_id);
                if !runner.park(poller, shutdown, message, reasons::UNKNOWN_VENDOR, &reason).await {
                    return false;
                }
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let handle_seconds = runner.metrics.handle_seconds.with_label_values(&[topic]);
    for _ in batch {
        handle_seconds.observe(elapsed);
    }
    tracing::debug!(applied, duplicates, refused, poison = isolated.poison.len(), "sales batch committed");
    true
}
