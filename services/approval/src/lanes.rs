//! The paid lane: partition 0 of the registrations topic gets its own queue,
//! and the loop always takes a paid form before a standard one.
//!
//! librdkafka keeps fetching the paid partition while standard partitions
//! have a backlog (their local queues fill, the paid one stays empty), so a
//! paid form reaches this loop within one fetch and waits at most for the
//! standard form in hand. That makes the priority real, not a label: a paid
//! form behind ten thousand standard ones is decided in well under a second.

use std::sync::Arc;

use mamochi_common::kafka::{self, CommittingConsumer};
use mamochi_common::shutdown::Shutdown;
use mamochi_events::runner::{Handler, Runner};
use mamochi_events::topics::{PAID_REGISTRATION_PARTITION, REGISTRATIONS};
use mamochi_events::RegistrationSubmitted;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;

/// Consumes registrations, paid lane first, until shutdown; then commits.
pub async fn run<H: Handler<RegistrationSubmitted>>(
    consumer: Arc<CommittingConsumer>,
    runner: &Runner,
    handler: &H,
    shutdown: &Shutdown,
) -> Result<(), KafkaError> {
    let paid = consumer
        .split_partition_queue(REGISTRATIONS.name(), PAID_REGISTRATION_PARTITION)
        .ok_or(KafkaError::Subscription("cannot split the paid partition's queue".into()))?;
    loop {
        let received = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            message = paid.recv() => message,
            message = consumer.recv() => message,
        };
        match received {
            Ok(message) => {
                if !runner.process(&message, handler, shutdown).await {
                    break;
                }
                consumer.store_offset_from_message(&message)?;
            }
            Err(error) => tracing::warn!(%error, "consumer reported an error; librdkafka retries by itself"),
        }
    }
    kafka::commit_stored_offsets(&consumer);
    Ok(())
}
