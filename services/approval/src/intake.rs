//! One batch of registration records, in two steps: [`decide`] decodes each
//! record (or parks it in the dead letters) and decides every form of the
//! batch at once through [`Approval::decide_batch`], in the batch's order;
//! [`publish`] then sends the batch's decisions. The lanes loop runs the
//! publication of one batch while it decides the next. Both follow the
//! platform's one error policy ([`mamochi_events::failure`], [`Poller`]).
//!
//! Guarantee: `decide` returns only once the batch's transactions committed
//! (or their records were parked), `publish` only once every decision of the
//! batch is published; only then may the caller store the batch's offsets. A
//! transient failure (database, registry, broker) retries the same step with
//! capped exponential backoff while the assignment is paused and the
//! consumer keeps polling, so the group never evicts us; a transaction
//! either committed whole (a redelivery finds every form a duplicate and
//! finishes its publication) or not at all. A batch that fails permanently
//! (a value PostgreSQL refuses, a constraint violation) is split, in order,
//! until the poison form is alone: it is parked (reason and provenance
//! headers, counted) and every other form is decided. Both return
//! `None`/`false` if shutdown interrupted them: nothing of the batch may
//! then be stored.

use std::time::Instant;

use futures::FutureExt;
use mamochi_common::shutdown::Shutdown;
use mamochi_events::failure::{self, reasons, Failure};
use mamochi_events::poller::Poller;
use mamochi_events::runner::Runner;
use mamochi_events::{topics, RegistrationSubmitted};
use rdkafka::message::BorrowedMessage;

use crate::handlers::{Approval, BatchError, Unpublished};
use crate::store::StoreError;

/// A batch decided and committed, its events not yet published.
#[derive(Debug)]
pub struct Decided {
    /// One per committed transaction (several when a poison form split it).
    pub unpublished: Vec<Unpublished>,
    pub records: usize,
    pub started: Instant,
}

/// The platform's error policy applied to approval: a value or constraint
/// PostgreSQL refuses, or a sealing failure (a bad key never gets better),
/// parks the form; a lost connection, a pool timeout, a deadlock, the
/// random source or the broker is retried.
pub fn classify(error: &BatchError) -> Failure {
    match error {
        BatchError::Store(StoreError::Database(error)) => failure::database(error),
        BatchError::Store(StoreError::Seal(_)) => Failure::permanent(reasons::HANDLER_REJECTED, error),
        other => Failure::transient(other),
    }
}

/// Decodes and decides a batch; `None` if shutdown interrupted it.
#[tracing::instrument(name = "decide_forms_batch", skip_all, fields(records = batch.len()))]
pub async fn decide(
    batch: &[BorrowedMessage<'_>],
    runner: &Runner,
    approval: &Approval,
    poller: &Poller<'_>,
    shutdown: &Shutdown,
) -> Option<Decided> {
    let started = Instant::now();
    let decoded =
        runner.decode_batch::<RegistrationSubmitted>(topics::REGISTRATIONS.name(), batch, poller, shutdown).await?;
    let (forms, sources): (Vec<_>, Vec<_>) = decoded.into_iter().unzip();
    let what = "decide a batch of forms";
    let isolated = poller
        .isolate(runner.backoff, shutdown, what, &forms, |chunk| {
            approval.decide_batch(chunk).map(|result| result.map_err(|error| classify(&error)))
        })
        .await?;
    if !runner.park_poison(&isolated.poison, &sources, poller, shutdown).await {
        return None;
    }
    let unpublished = isolated.done.into_iter().map(|(_, unpublished)| unpublished).collect();
    Some(Decided { unpublished, records: batch.len(), started })
}

/// Publishes a decided batch's decisions; `false` if shutdown interrupted it.
pub async fn publish(
    decided: &Decided,
    runner: &Runner,
    approval: &Approval,
    poller: &Poller<'_>,
    shutdown: &Shutdown,
) -> bool {
    for unpublished in &decided.unpublished {
        let publish = || approval.publish_batch(unpublished);
        if poller.retry_transient(runner.backoff, shutdown, "publish a batch of decisions", publish).await.is_none() {
            return false;
        }
    }
    runner.observe_handled(topics::REGISTRATIONS.name(), decided.records, decided.started);
    true
}
