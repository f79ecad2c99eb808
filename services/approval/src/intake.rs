//! One batch of registration records, in two steps: [`decide`] decodes each
//! record (or parks it in the dead letters) and decides every form of the
//! batch at once through [`Approval::decide_batch`], in the batch's order;
//! [`publish`] then sends the batch's decisions. The lanes loop runs the
//! publication of one batch while it decides the next.
//!
//! Guarantee: `decide` returns only once the batch's transaction committed
//! (or every record was parked), `publish` only once every decision of the
//! batch is published; only then may the caller store the batch's offsets. A
//! transient failure (database, registry, broker) retries the same step with
//! capped exponential backoff; the batch's transaction either committed whole
//! (a redelivery finds every form a duplicate and finishes its publication)
//! or not at all. Both return `None`/`false` if shutdown interrupted them:
//! nothing of the batch may then be stored.

use std::fmt::Display;
use std::future::Future;
use std::time::Instant;

use mamochi_common::shutdown::Shutdown;
use mamochi_events::consume::{decode_or_park, Decoded};
use mamochi_events::runner::{Backoff, Runner};
use mamochi_events::{topics, RegistrationSubmitted};
use rdkafka::message::BorrowedMessage;

use crate::handlers::{Approval, Unpublished};

/// A batch decided and committed, its events not yet published.
#[derive(Debug)]
pub struct Decided {
    pub unpublished: Unpublished,
    pub records: usize,
    pub started: Instant,
}

/// Decodes and decides a batch; `None` if shutdown interrupted it.
#[tracing::instrument(name = "decide_forms_batch", skip_all, fields(records = batch.len()))]
pub async fn decide(
    batch: &[BorrowedMessage<'_>],
    runner: &Runner,
    approval: &Approval,
    shutdown: &Shutdown,
) -> Option<Decided> {
    let started = Instant::now();
    runner.metrics.consumed.with_label_values(&[topics::REGISTRATIONS.name()]).inc_by(batch.len() as u64);
    let mut forms = Vec::with_capacity(batch.len());
    for message in batch {
        let decode = || decode_or_park::<RegistrationSubmitted>(&runner.codec, &runner.dead_letters, message);
        if let Decoded::Event(form) = retry(runner.backoff, shutdown, "decode a form", decode).await? {
            forms.push(form);
        }
    }
    let unpublished =
        retry(runner.backoff, shutdown, "decide a batch of forms", || approval.decide_batch(&forms)).await?;
    Some(Decided { unpublished, records: batch.len(), started })
}

/// Publishes a decided batch's decisions; `false` if shutdown interrupted it.
pub async fn publish(decided: &Decided, runner: &Runner, approval: &Approval, shutdown: &Shutdown) -> bool {
    let publish = || approval.publish_batch(&decided.unpublished);
    if retry(runner.backoff, shutdown, "publish a batch of decisions", publish).await.is_none() {
        return false;
    }
    let handle_seconds = runner.metrics.handle_seconds.with_label_values(&[topics::REGISTRATIONS.name()]);
    let elapsed = decided.started.elapsed().as_secs_f64();
    for _ in 0..decided.records {
        handle_seconds.observe(elapsed);
    }
    true
}

/// Retries `attempt` with capped exponential backoff until it succeeds
/// (`Some`) or shutdown is requested (`None`).
async fn retry<T, E, F>(backoff: Backoff, shutdown: &Shutdown, what: &str, mut attempt: impl FnMut() -> F) -> Option<T>
where
    E: Display,
    F: Future<Output = Result<T, E>>,
{
    let mut delay = backoff.first;
    loop {
        match attempt().await {
            Ok(value) => return Some(value),
            Err(error) => {
                tracing::warn!(%error, what, retry_in_ms = delay.as_millis() as u64, "failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(delay) => {},
                }
                delay = (delay * 2).min(backoff.max);
            }
        }
    }
}
