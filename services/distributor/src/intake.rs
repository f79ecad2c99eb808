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
use mamochi_common::kafka::CommittingConsumer;
use mamochi_common::shutdown::Shutdown;
use mamochi_events::batch::{run_batches, BatchHandler};
use mamochi_events::failure::reasons;
use mamochi_events::poller::Poller;
use mamochi_events::runner::Runner;
use mamochi_events::{topics, SaleRecorded};
use rdkafka::message::BorrowedMessage;

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
    run_batches(consumer, max_batch, shutdown, &Sales { runner, applier }).await;
}

/// The sales batches' handler.
#[derive(Clone, Copy)]
struct Sales<'a> {
    runner: &'a Runner,
    applier: &'a SaleApplier,
}

impl BatchHandler for Sales<'_> {
    /// Decodes, validates and applies a batch; `false` if shutdown interrupted
    /// it (nothing of it may then be stored).
    async fn apply(&self, batch: &[BorrowedMessage<'_>], poller: &Poller<'_>, shutdown: &Shutdown) -> bool {
        let Self { runner, applier } = *self;
        let started = Instant::now();
        let topic = topics::SALES.name();
        let Some(decoded) = runner.decode_batch::<SaleRecorded>(topic, batch, poller, shutdown).await else {
            return false;
        };
        let mut sales = Vec::with_capacity(decoded.len());
        let mut sources = Vec::with_capacity(decoded.len());
        for (sale, message) in decoded {
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
        if !runner.park_poison(&isolated.poison, &sources, poller, shutdown).await {
            return false;
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
        runner.observe_handled(topic, batch.len(), started);
        tracing::debug!(applied, duplicates, refused, poison = isolated.poison.len(), "sales batch committed");
        true
    }
}
