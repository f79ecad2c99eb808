//! The paid lane: partition 0 of the registrations topic gets its own queue,
//! and every batch takes paid forms before standard ones.
//!
//! A batch is what the consumer has already buffered, up to a limit, never
//! waiting for more: first every paid form waiting in the paid queue, then —
//! only once the paid queue is empty — standard forms to fill the batch. The
//! batch is decided in that order (see [`crate::intake`]), so no standard
//! form is ever put ahead of a paid form that was waiting when the batch was
//! taken.
//!
//! librdkafka keeps fetching the paid partition while standard partitions
//! have a backlog (their local queues fill, the paid one stays empty), so a
//! paid form reaches this loop within one fetch and waits at most for the
//! batch in hand. That makes the priority real, not a label: a paid form
//! behind ten thousand standard ones is decided in well under a second.
//!
//! Guarantee: at least once, exactly once in effect. A batch's offsets are
//! stored only after its decisions committed and were published; a crash
//! re-delivers at most the records whose offsets were not yet committed, and
//! the dedupe in [`crate::store`] makes their second decision a no-op.

use std::sync::Arc;

use futures::FutureExt;
use mamochi_common::kafka::{self, CommittingConsumer};
use mamochi_common::shutdown::Shutdown;
use mamochi_events::runner::Runner;
use mamochi_events::topics::{PAID_REGISTRATION_PARTITION, REGISTRATIONS};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};

use crate::handlers::Approval;
use crate::intake;

/// Most forms decided in one transaction. Bounds how long a paid form that
/// arrives just after a batch was taken waits for that batch to finish, and
/// keeps the multi-row statements well under PostgreSQL's bind limit.
pub const MAX_BATCH: usize = 500;

/// Consumes registrations, paid lane first, in batches of at most
/// `max_batch` forms, until shutdown; then commits.
pub async fn run(
    consumer: Arc<CommittingConsumer>,
    runner: &Runner,
    approval: &Approval,
    max_batch: usize,
    shutdown: &Shutdown,
) -> Result<(), KafkaError> {
    let paid = consumer
        .split_partition_queue(REGISTRATIONS.name(), PAID_REGISTRATION_PARTITION)
        .ok_or(KafkaError::Subscription("cannot split the paid partition's queue".into()))?;
    let max_batch = max_batch.max(1);
    loop {
        let (first, first_is_paid) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            message = paid.recv() => (message, true),
            message = consumer.recv() => (message, false),
        };
        let first = match first {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "consumer reported an error; librdkafka retries by itself");
                continue;
            }
        };
        let (mut paid_forms, mut standard_forms) =
            if first_is_paid { (vec![first], Vec::new()) } else { (Vec::new(), vec![first]) };
        // Paid forms first: everything already waiting on the paid lane...
        while paid_forms.len() + standard_forms.len() < max_batch {
            match paid.recv().now_or_never() {
                Some(Ok(message)) => paid_forms.push(message),
                Some(Err(error)) => {
                    tracing::warn!(%error, "consumer reported an error; librdkafka retries by itself");
                    break;
                }
                None => break,
            }
        }
        // ...then, the paid queue being empty, standard forms to fill up.
        while paid_forms.len() + standard_forms.len() < max_batch {
            match consumer.recv().now_or_never() {
                Some(Ok(message)) => standard_forms.push(message),
                Some(Err(error)) => {
                    tracing::warn!(%error, "consumer reported an error; librdkafka retries by itself");
                    break;
                }
                None => break,
            }
        }
        let batch: Vec<BorrowedMessage<'_>> = paid_forms.into_iter().chain(standard_forms).collect();
        if !intake::process(&batch, runner, approval, shutdown).await {
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
    kafka::commit_stored_offsets(&consumer);
    Ok(())
}
