//! The steps every batched consumer loop shares (accounting's and the
//! distributor's sales intakes, approval's forms): take buffered batches and
//! store their offsets once a [`BatchHandler`] dealt with them
//! ([`run_batches`], or [`crate::lanes::run_laned_batches`] for a topic
//! whose partition 0 is a priority lane), decode a batch while
//! parking what never decodes ([`Runner::decode_batch`]), park the poison
//! records [`Poller::isolate`] found ([`Runner::park_poison`]) and count the
//! batch's handling time ([`Runner::observe_handled`]).
//!
//! Guarantee: a batch's offsets are stored only after the loop's `apply`
//! said the whole batch is dealt with (applied, or parked in the dead
//! letters); every step retries through the [`Poller`], so the consumer keeps
//! polling, and reports shutdown (`None` or `false`), after which nothing of
//! the batch may be stored.

use std::future::Future;
use std::time::Instant;

use mamochi_common::kafka::{self, CommittingConsumer};
use mamochi_common::shutdown::Shutdown;
use rdkafka::message::{BorrowedMessage, Message};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::failure::{reasons, Failure};
use crate::poller::Poller;
use crate::runner::{store_offset, Runner};
use crate::AvroSchemaSource;

/// What a batched loop does with each batch it takes.
pub trait BatchHandler: Sync {
    /// Deals with every record of `batch` (its effect committed, or parked
    /// in the dead letters), retrying through `poller`; `false` if shutdown
    /// interrupted it, and then nothing of the batch may be stored.
    fn apply(
        &self,
        batch: &[BorrowedMessage<'_>],
        poller: &Poller<'_>,
        shutdown: &Shutdown,
    ) -> impl Future<Output = bool> + Send;
}

/// Takes what `consumer` has buffered, at most `max_batch` records at a time
/// (never waiting for more), until `shutdown` is cancelled; hands each batch
/// to `handler` (in an `apply_batch` span naming its topic, size and first
/// offset) and stores its offsets once it is dealt with. A batch
/// interrupted by shutdown stops the loop with nothing of it stored.
/// Commits the stored offsets before returning.
pub async fn run_batches(
    consumer: &CommittingConsumer,
    max_batch: usize,
    shutdown: &Shutdown,
    handler: &impl BatchHandler,
) {
    let poller = Poller::new(consumer);
    while let Some(batch) = poller.next_batch(shutdown, max_batch.max(1)).await {
        let span = tracing::info_span!(
            "apply_batch",
            topic = batch.first().map(|m| m.topic()).unwrap_or_default(),
            records = batch.len(),
            first_offset = batch.first().map(|m| m.offset()).unwrap_or_default(),
        );
        if !handler.apply(&batch, &poller, shutdown).instrument(span).await {
            break;
        }
        for message in &batch {
            store_offset(consumer, message);
        }
    }
    kafka::commit_stored_offsets(consumer);
}

impl Runner {
    /// Counts `batch` as consumed from `topic`, then decodes each record as
    /// `T`; a record that never will decode is parked and left out. The
    /// values come with the message each came from, in batch order. `None`
    /// if shutdown interrupted it.
    pub async fn decode_batch<'b, 'c, T>(
        &self,
        topic: &str,
        batch: &'b [BorrowedMessage<'c>],
        poller: &Poller<'_>,
        shutdown: &Shutdown,
    ) -> Option<Vec<(T, &'b BorrowedMessage<'c>)>>
    where
        T: AvroSchemaSource + DeserializeOwned,
    {
        self.metrics.consumed.with_label_values(&[topic]).inc_by(batch.len() as u64);
        let mut decoded = Vec::with_capacity(batch.len());
        for message in batch {
            if let Some(value) = self.decode::<T>(poller, shutdown, message).await? {
                decoded.push((value, message));
            }
        }
        Some(decoded)
    }

    /// Parks the items [`Poller::isolate`] found poison, each under its
    /// failure's reason; `sources[index]` is the message of item `index`.
    /// `false` if shutdown interrupted it.
    pub async fn park_poison(
        &self,
        poison: &[(usize, Failure)],
        sources: &[&BorrowedMessage<'_>],
        poller: &Poller<'_>,
        shutdown: &Shutdown,
    ) -> bool {
        for (index, failure) in poison {
            let Some(message) = sources.get(*index) else { continue };
            let reason = match failure {
                Failure::Permanent { reason, .. } => reason,
                Failure::Transient(_) => reasons::HANDLER_REJECTED,
            };
            if !self.park(poller, shutdown, message, reason, failure).await {
                return false;
            }
        }
        true
    }

    /// Records the handling time of a batch of `records` from `topic` taken
    /// at `started`: every record of it waited that long for its effect.
    pub fn observe_handled(&self, topic: &str, records: usize, started: Instant) {
        let handle_seconds = self.metrics.handle_seconds.with_label_values(&[topic]);
        let elapsed = started.elapsed().as_secs_f64();
        for _ in 0..records {
            handle_seconds.observe(elapsed);
        }
    }
}
