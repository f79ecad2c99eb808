//! Priority lanes: partition 0 of a laned topic (paid registrations, cart
//! reports; see [`crate::topics::PRIORITY_LANE_PARTITION`]) gets a queue of
//! its own, and every batch takes what waits there first.
//!
//! A batch is what the consumer has already buffered, up to a limit, never
//! waiting for more: every lane record waiting in the lane's queue first;
//! other records only when there is no lane record (a batch opened by
//! another record that then finds lane records takes the lane records and no
//! more others). So no record is ever put ahead of a lane record that was
//! waiting when the batch was taken, and a lane record's batch stays small
//! and quick.
//!
//! librdkafka keeps fetching the lane partition while the other partitions
//! have a backlog (their local queues fill, the lane's stays empty), so a
//! lane record reaches the loop within one fetch and waits at most for the
//! batch in hand: behind ten thousand other records it is handled in well
//! under a second (approval's paid-lane test, the distributor's cart-report
//! test).
//!
//! Other records come through a [`Poller`], which holds the records that
//! arrive while a step is retried and hands them out first, but never ahead
//! of a lane record.
//!
//! Guarantee: records of one partition keep their order; [`run_laned_batches`]
//! stores a batch's offsets only once its handler dealt with the whole batch,
//! in batch order, as [`crate::batch::run_batches`] does.

use std::sync::Arc;

use futures::FutureExt;
use mamochi_common::kafka::{self, CommitOnRevoke, CommittingConsumer};
use mamochi_common::shutdown::Shutdown;
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use tracing::Instrument;

use crate::batch::BatchHandler;
use crate::poller::Poller;
use crate::runner::store_offset;

/// A consumer's records, its lane's first.
pub struct LanedRecords<'c> {
    lane: StreamPartitionQueue<CommitOnRevoke>,
    poller: Poller<'c>,
}

impl std::fmt::Debug for LanedRecords<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanedRecords").field("poller", &self.poller).finish_non_exhaustive()
    }
}

impl<'c> LanedRecords<'c> {
    /// Splits partition `lane` of `topic` off `consumer`; call it before the
    /// consumer is first polled, so no lane record is buffered with the rest.
    pub fn new(consumer: &'c Arc<CommittingConsumer>, topic: &str, lane: i32) -> Result<Self, KafkaError> {
        let lane_queue = consumer
            .split_partition_queue(topic, lane)
            .ok_or_else(|| KafkaError::Subscription(format!("cannot split partition {lane} of {topic} off")))?;
        Ok(Self { lane: lane_queue, poller: Poller::new(consumer) })
    }

    /// The poller of the other records, for the steps' retries.
    pub fn poller(&self) -> &Poller<'c> {
        &self.poller
    }

    /// The next batch of at most `max` records, lane records first. With
    /// `wait`, waits for a first record (`None` once shutdown is requested);
    /// without, takes only what is already here (maybe nothing). Once
    /// shutdown is requested, a batch holds only its first record.
    pub async fn next_batch(&self, shutdown: &Shutdown, max: usize, wait: bool) -> Option<Vec<BorrowedMessage<'_>>> {
        let (mut lane, mut others) = (Vec::new(), Vec::new());
        while wait && lane.is_empty() && others.is_empty() {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return None,
                message = self.lane.recv() => match message {
                    Ok(message) => lane.push(message),
                    Err(error) => tracing::warn!(%error, "consumer reported an error; librdkafka retries by itself"),
                },
                message = self.poller.next(shutdown) => others.push(message?),
            }
        }
        let max = if shutdown.is_cancelled() { 0 } else { max.max(1) };
        while lane.len() + others.len() < max {
            match self.lane.recv().now_or_never() {
                Some(Ok(message)) => lane.push(message),
                Some(Err(error)) => {
                    tracing::warn!(%error, "consumer reported an error; librdkafka retries by itself");
                    break;
                }
                None => break,
            }
        }
        while lane.is_empty() && others.len() < max {
            match self.poller.next_buffered() {
                Some(message) => others.push(message),
                None => break,
            }
        }
        lane.append(&mut others);
        Some(lane)
    }
}

/// As [`crate::batch::run_batches`], for a laned topic: takes batches from
/// [`LanedRecords`] until `shutdown` is cancelled, hands each to `handler`
/// (in an `apply_batch` span) and stores its offsets once it is dealt with;
/// a batch interrupted by shutdown stops the loop with nothing of it stored.
/// Commits the stored offsets before returning. `Err` only if the lane
/// cannot be split off.
pub async fn run_laned_batches(
    consumer: &Arc<CommittingConsumer>,
    topic: &str,
    lane: i32,
    max_batch: usize,
    shutdown: &Shutdown,
    handler: &impl BatchHandler,
) -> Result<(), KafkaError> {
    let records = LanedRecords::new(consumer, topic, lane)?;
    while let Some(batch) = records.next_batch(shutdown, max_batch, true).await {
        let span = tracing::info_span!(
            "apply_batch",
            topic,
            records = batch.len(),
            first_partition = batch.first().map(|m| m.partition()).unwrap_or_default(),
            first_offset = batch.first().map(|m| m.offset()).unwrap_or_default(),
        );
        if !handler.apply(&batch, records.poller(), shutdown).instrument(span).await {
            break;
        }
        for message in &batch {
            store_offset(consumer, message);
        }
    }
    kafka::commit_stored_offsets(consumer);
    Ok(())
}
