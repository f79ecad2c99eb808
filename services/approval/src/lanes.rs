//! The paid lane: partition 0 of the registrations topic gets its own queue,
//! and every batch takes paid forms before standard ones
//! ([`mamochi_events::lanes::LanedRecords`], which says how a batch is taken
//! and why a paid form behind ten thousand standard ones is decided in well
//! under a second). While a batch is decided, the previous batch's decisions
//! are published; with decisions waiting to be published, a batch takes only
//! what is already buffered, so their publication never waits for new forms.
//!
//! Guarantee: at least once, exactly once in effect. A batch's offsets are
//! stored only after its decisions committed and were published, and in
//! batch order (a batch's offsets never get ahead of an earlier batch's
//! unfinished publication); a crash
//! re-delivers at most the records whose offsets were not yet committed, and
//! the dedupe in [`crate::store`] makes their second decision a no-op.

use std::sync::Arc;

use mamochi_common::kafka::{self, CommittingConsumer};
use mamochi_common::shutdown::Shutdown;
use mamochi_events::lanes::LanedRecords;
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
    let records = LanedRecords::new(&consumer, REGISTRATIONS.name(), PAID_REGISTRATION_PARTITION)?;
    let poller = records.poller();
    let mut unpublished: Option<(Vec<BorrowedMessage<'_>>, Decided)> = None;
    loop {
        // With decisions waiting to be published, take only what is already
        // buffered: their publication must not wait for new forms.
        let Some(batch) = records.next_batch(shutdown, max_batch, unpublished.is_none()).await else {
            break;
        };
        let previous = unpublished.take();
        let (published, decided) = tokio::join!(
            async {
                match &previous {
                    Some((_, decided)) => intake::publish(decided, runner, approval, poller, shutdown).await,
                    None => true,
                }
            },
            async {
                if batch.is_empty() {
                    return Some(None);
                }
                intake::decide(&batch, runner, approval, poller, shutdown).await.map(Some)
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

/// Stores the offsets of a batch whose effects are durable and published.
fn store_offsets(consumer: &CommittingConsumer, messages: &[BorrowedMessage<'_>]) {
    for message in messages {
        // A partition that moved away during the batch refuses the store:
        // logged, and its new owner's dedupe absorbs the repeat.
        store_offset(consumer, message);
    }
}
