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
use mamochi_common::kafka::CommittingConsumer;
use mamochi_common::shutdown::Shutdown;
use mamochi_events::batch::{run_batches, BatchHandler};
use mamochi_events::failure::{self, reasons, Failure};
use mamochi_events::poller::Poller;
use mamochi_events::runner::Runner;
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
    run_batches(consumer, max_batch, shutdown, &Sales { runner, ledger }).await;
}

/// The sales batches' handler.
#[derive(Clone, Copy)]
struct Sales<'a> {
    runner: &'a Runner,
    ledger: &'a Ledger,
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

impl BatchHandler for Sales<'_> {
    /// Decodes, validates and applies a batch; `false` if shutdown interrupted
    /// it (nothing of it may then be stored).
    async fn apply(&self, batch: &[BorrowedMessage<'_>], poller: &Poller<'_>, shutdown: &Shutdown) -> bool {
        let Self { runner, ledger } = *self;
        let started = Instant::now();
        let topic = topics::SALES.name();
        let Some(decoded) = runner.decode_batch::<SaleRecorded>(topic, batch, poller, shutdown).await else {
            return false;
        };
        let mut sales = Vec::with_capacity(decoded.len());
        let mut sources = Vec::with_capacity(decoded.len());
        for (sale, message) in decoded {
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
        ledger.metrics.sales_rejected.with_label_values(&["invalid"]).inc_by(isolated.poison.len() as u64);
        if !runner.park_poison(&isolated.poison, &sources, poller, shutdown).await {
            return false;
        }
        for (_, outcome) in &isolated.done {
            for sale_id in &outcome.overflowed {
                ledger.metrics.sales_rejected.with_label_values(&["overflow"]).inc();
                let source =
                    sales.iter().position(|sale| sale.sale_id == *sale_id).and_then(|index| sources.get(index));
                if let Some(message) = source {
                    let reason = "the week's totals would overflow 64-bit integers";
                    if !runner.park(poller, shutdown, message, reasons::INVALID_DATA, &reason).await {
                        return false;
                    }
                }
            }
        }
        runner.observe_handled(topic, batch.len(), started);
        true
    }
}
