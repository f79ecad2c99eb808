//! The tracking consumer loop: reports first ([`run_laned_batches`] on the
//! report partition), a batch per database transaction ([`Tracker::apply`]),
//! under the platform's one error policy ([`mamochi_events::failure`],
//! [`Poller`]).
//!
//! Guarantee: at least once, exactly once in effect, as the sales intake
//! ([`crate::intake`]): offsets are stored only after the batch's transaction
//! committed (or its refused records were parked); a transient failure
//! retries the same batch while the consumer keeps polling; a batch that
//! fails permanently is split until the poison event is alone, and that
//! event is parked. An event of a vendor who is not a member is parked and
//! the rest of the batch applies.

use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use mamochi_common::kafka::CommittingConsumer;
use mamochi_common::shutdown::Shutdown;
use mamochi_events::batch::BatchHandler;
use mamochi_events::failure::reasons;
use mamochi_events::lanes::run_laned_batches;
use mamochi_events::poller::Poller;
use mamochi_events::runner::Runner;
use mamochi_events::topics::{CART_REPORT_PARTITION, CART_TRACKING};
use mamochi_events::{CartTrackingEvent, CartTrackingEventKind};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;

use super::Tracker;

/// Consumes cart tracking events, reports first, until `shutdown` is
/// cancelled, then commits and returns; applies at most `max_batch` events
/// per transaction.
pub async fn run(
    consumer: &Arc<CommittingConsumer>,
    runner: &Runner,
    tracker: &Tracker,
    max_batch: usize,
    shutdown: &Shutdown,
) -> Result<(), KafkaError> {
    let handler = Tracking { runner, tracker };
    run_laned_batches(consumer, CART_TRACKING.name(), CART_REPORT_PARTITION, max_batch, shutdown, &handler).await
}

/// The tracking batches' handler.
#[derive(Clone, Copy)]
struct Tracking<'a> {
    runner: &'a Runner,
    tracker: &'a Tracker,
}

impl BatchHandler for Tracking<'_> {
    /// Decodes and applies a batch; `false` if shutdown interrupted it
    /// (nothing of it may then be stored).
    async fn apply(&self, batch: &[BorrowedMessage<'_>], poller: &Poller<'_>, shutdown: &Shutdown) -> bool {
        let Self { runner, tracker } = *self;
        let started = Instant::now();
        let topic = CART_TRACKING.name();
        let Some(decoded) = runner.decode_batch::<CartTrackingEvent>(topic, batch, poller, shutdown).await else {
            return false;
        };
        let (events, sources): (Vec<CartTrackingEvent>, Vec<&BorrowedMessage<'_>>) = decoded.into_iter().unzip();
        let what = "apply a batch of cart tracking events";
        let isolated = poller
            .isolate(runner.backoff, shutdown, what, &events, |chunk| {
                tracker.apply(chunk).map(|result| result.map_err(|error| error.failure()))
            })
            .await;
        let Some(isolated) = isolated else {
            return false;
        };
        if !runner.park_poison(&isolated.poison, &sources, poller, shutdown).await {
            return false;
        }
        let (mut alarms, mut duplicates, mut ignored) = (0, 0, 0);
        for (range, outcome) in &isolated.done {
            alarms += outcome.alarms.len();
            duplicates += outcome.duplicates;
            ignored += outcome.ignored;
            for event_id in &outcome.unknown_vendor {
                let index = range.clone().find(|&index| events.get(index).is_some_and(|e| e.event_id == *event_id));
                if let Some((event, message)) = index.and_then(|index| events.get(index).zip(sources.get(index))) {
                    let reason = format!("vendor {} is not a member", event.vendor_id);
                    if !runner.park(poller, shutdown, message, reasons::UNKNOWN_VENDOR, &reason).await {
                        return false;
                    }
                }
            }
        }
        // Counted once the batch committed, so the rate is of pings handled,
        // not of pings decoded (a batch interrupted by shutdown counts nothing).
        let pings = events.iter().filter(|event| event.kind == CartTrackingEventKind::Location).count();
        tracker.metrics.tracking_pings.inc_by(pings as u64);
        runner.observe_handled(topic, batch.len(), started);
        tracing::debug!(alarms, duplicates, ignored, poison = isolated.poison.len(), "tracking batch committed");
        true
    }
}
