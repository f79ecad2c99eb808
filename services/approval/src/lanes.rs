//! The paid lane: partition 0 of the registrations topic gets its own queue,
//! and every batch takes paid forms before standard ones.
//!
//! A batch is what the consumer has already buffered, up to a limit, never
//! waiting for more: every paid form waiting in the paid queue first; standard
//! forms only when there is no paid one (a batch opened by a standard form
//! that then finds paid ones decides the paid ones first and takes no more
//! standard ones). So no standard form is ever put ahead of a paid form that
//! was waiting when the batch was taken, and a paid form's batch stays small
//! and quick. While a batch is decided, the previous batch's decisions are
//! published.
//!
//! librdkafka keeps fetching the paid partition while standard partitions
//! have a backlog (their local queues fill, the paid one stays empty), so a
//! paid form reaches this loop within one fetch and waits at most for the
//! batch in hand. That makes the priority real, not a label: a paid form
//! behind ten thousand standard ones is decided in well under a second.
//!
//! Standard records come through a [`Poller`], which holds the records that
//! arrive while a step is retried (the assignment paused, the consumer still
//! polled so the group never evicts us) and hands them out first.
//!
//! Guarantee: at least once, exactly once in effect. A batch's offsets are
//! stored only after its decisions committed and were published, and in
//! batch order (a batch's offsets never get ahead of an earlier batch's
//! unfinished publication); a crash
//! re-delivers at most the records whose offsets were not yet committed, and
//! the dedupe in [`crate::store`] makes their second decision a no-op.

use std::sync::Arc;

use futures::FutureExt;
use mamochi_common::kafka::{self, CommittingConsumer};
use mamochi_common::shutdown::Shutdown;
use mamochi_events::poller::Poller;
use mamochi_events::runner::{store_offset, Runner};
use mamochi_events::topics::{PAID_REGISTRATION_PARTITION, REGISTRATIONS};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;

use crate::handlers::Approval;
use crate::intake::{self, Decided};

/// Most forms decided in one transaction. Bounds how long a paid form that
/// arrives just after a batch was taken waits for that batch to finish, and
/// keeps the multi-row statements well under PostgreSQL's bind limit.
pub const MAX_BATCH: usize = 500;

/// Consumes registrations, paid lane first, in batches of at most
/// `max_batch` forms, until shutdown; then commits.
///
/// One batch's decisions are published while the next batch is decided (its
/// transaction sees the previous batch committed); a batch's offsets are
/// stored once its publication is done, so always in batch order.
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
    let poller = Poller::new(&consumer);
    let mut unpublished: Option<(Vec<BorrowedMessage<'_>>, Decided)> = None;
    loop {
        let mut batch = Batch::default();
        // With decisions waiting to be published, take only what is already
        // buffered: their publication must not wait for new forms.
        if unpublished.is_none() {
            // Records held back during a retry come out of the poller first,
            // but never ahead of a paid form.
            let (first, first_is_paid) = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                message = paid.recv() => (Some(message), true),
                message = poller.next(shutdown) => (message.map(Ok), false),
            };
            match first {
                None => break,
                Some(Ok(message)) if first_is_paid => batch.paid.push(message),
                Some(Ok(message)) => batch.standard.push(message),
                Some(Err(error)) => {
                    tracing::warn!(%error, "consumer reported an error; librdkafka retries by itself");
                    continue;
                }
            }
        }
        // Once shutdown is requested, only the batch in hand is finished.
        let max_batch = if shutdown.is_cancelled() { 0 } else { max_batch };
        // Paid forms first: everything already waiting on the paid lane...
        while batch.len() < max_batch {
            match paid.recv().now_or_never() {
                Some(Ok(message)) => batch.paid.push(message),
                Some(Err(error)) => {
                    tracing::warn!(%error, "consumer reported an error; librdkafka retries by itself");
                    break;
                }
                None => break,
            }
        }
        // ...then standard forms, only in a batch without paid ones: a paid
        // form's batch stays small, so its decision is not held up by
        // hundreds of standard ones.
        while batch.paid.is_empty() && batch.len() < max_batch {
            match poller.next_buffered() {
                Some(message) => batch.standard.push(message),
                None => break,
            }
        }
        let batch: Vec<BorrowedMessage<'_>> = batch.paid.into_iter().chain(batch.standard).collect();
        let previous = unpublished.take();
        let (published, decided) = tokio::join!(
            async {
                match &previous {
                    Some((_, decided)) => intake::publish(decided, runner, approval, &poller, shutdown).await,
                    None => true,
                }
            },
            async {
                if batch.is_empty() {
                    return Some(None);
                }
                intake::decide(&batch, runner, approval, &poller, shutdown).await.map(Some)
            },
        );
        if !published {
            break;
        }
        if let Some((messages, _)) = previous {
            store_offsets(&consumer, &messages);
        }
        match decided {
            Some(Some(decided)) => unpublished = Some((batch, decided)),
            Some(None) => {}
            None => break,
        }
    }
    kafka::commit_stored_offsets(&consumer);
    Ok(())
}

/// The records taken for one batch, by lane.
#[derive(Default)]
struct Batch<'a> {
    paid: Vec<BorrowedMessage<'a>>,
    standard: Vec<BorrowedMessage<'a>>,
}

impl Batch<'_> {
    fn len(&self) -> usize {
        self.paid.len() + self.standard.len()
    }
}

/// Stores the offsets of a batch whose effects are durable and published.
fn store_offsets(consumer: &CommittingConsumer, messages: &[BorrowedMessage<'_>]) {
    for message in messages {
        // A partition that moved away during the batch refuses the store:
        // logged, and its new owner's dedupe absorbs the repeat.
        store_offset(consumer, message);
    }
}
