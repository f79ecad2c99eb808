//! One batch of registration records: decode each (or park it in the dead
//! letters), then decide every form of the batch at once through
//! [`Approval::decide_batch`], in the batch's order.
//!
//! Guarantee: `process` returns `true` only once every record of the batch is
//! dealt with — decided and published, or parked — so the caller may store
//! the batch's offsets. A transient failure (database, registry, broker)
//! retries the same batch with capped exponential backoff; the batch's
//! transaction either committed whole (the retry finds every form a
//! duplicate and finishes its publication) or not at all.

use std::fmt::Display;
use std::future::Future;
use std::time::Instant;

use mamochi_common::shutdown::Shutdown;
use mamochi_events::consume::{decode_or_park, Decoded};
use mamochi_events::runner::{Backoff, Runner};
use mamochi_events::{topics, RegistrationSubmitted};
use rdkafka::message::BorrowedMessage;

use crate::handlers::Approval;

/// Decodes and decides a batch; `false` if shutdown interrupted it (nothing
/// of it may then be stored).
#[tracing::instrument(name = "decide_forms_batch", skip_all, fields(records = batch.len()))]
pub async fn process(batch: &[BorrowedMessage<'_>], runner: &Runner, approval: &Approval, shutdown: &Shutdown) -> bool {
    if batch.is_empty() {
        return true;
    }
    let started = Instant::now();
    let topic = topics::REGISTRATIONS.name();
    runner.metrics.consumed.with_label_values(&[topic]).inc_by(batch.len() as u64);
    let mut forms = Vec::with_capacity(batch.len());
    for message in batch {
        let decode = || decode_or_park::<RegistrationSubmitted>(&runner.codec, &runner.dead_letters, message);
        let Some(decoded) = retry(runner.backoff, shutdown, "decode a form", decode).await else {
            return false;
        };
        if let Decoded::Event(form) = decoded {
            forms.push(form);
        }
    }
    if !forms.is_empty()
        && retry(runner.backoff, shutdown, "decide a batch of forms", || approval.decide_batch(&forms)).await.is_none()
    {
        return false;
    }
    let handle_seconds = runner.metrics.handle_seconds.with_label_values(&[topic]);
    let elapsed = started.elapsed().as_secs_f64();
    for _ in batch {
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
