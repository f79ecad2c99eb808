//! The consumer side of the error policy ([`crate::failure`]): where a
//! consumer loop takes its records, and how it retries a transient failure
//! without being evicted from its group.
//!
//! While a step is retried, [`Poller`] pauses every assigned partition and
//! keeps polling the consumer (so librdkafka sees the application alive and
//! `max.poll.interval.ms` never expires, however long the outage); records
//! that were already fetched and arrive meanwhile are held, in order, and
//! handed out before anything newer. When the step succeeds the partitions
//! are resumed. [`Poller::isolate`] applies a batch and, when the batch
//! fails permanently, splits it in halves until the poison records are
//! alone, so one bad record costs the rest of its batch only a few more
//! transactions.
//!
//! Guarantee: no record is skipped or reordered on its partition — a held
//! record is returned before any later one, and a record returned to the
//! loop is the loop's to finish (its offset stored only after). A rebalance
//! while paused is survived: new partitions deliver into the held queue; a
//! revoked partition's offsets fail to store, which the loops log (its new
//! owner re-reads from the last commit, and dedupe absorbs the repeat).

use std::collections::VecDeque;
use std::fmt::Display;
use std::future::Future;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use mamochi_common::kafka::CommittingConsumer;
use mamochi_common::shutdown::Shutdown;
use rdkafka::consumer::Consumer;
use rdkafka::message::BorrowedMessage;

use crate::failure::Failure;
use crate::runner::Backoff;

/// How often the consumer is polled while a step waits to be retried; far
/// below any sensible `max.poll.interval.ms`.
const POLL_TICK: Duration = Duration::from_millis(500);

/// A consumer's records, with held-back ones first, and its retries.
pub struct Poller<'c> {
    consumer: &'c CommittingConsumer,
    held: Mutex<VecDeque<BorrowedMessage<'c>>>,
    paused: AtomicBool,
}

impl std::fmt::Debug for Poller<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller").field("paused", &self.paused).finish_non_exhaustive()
    }
}

/// How a retried step ended.
#[derive(Debug)]
pub enum Step<T> {
    Done(T),
    /// It failed permanently (never retried).
    Permanent(Failure),
    /// Shutdown was requested while it waited to be retried.
    Interrupted,
}

/// What applying a batch with poison isolation did.
#[derive(Debug)]
pub struct Isolated<T> {
    /// Each sub-batch that committed: its index range in the input, and
    /// what the step returned; in input order.
    pub done: Vec<(Range<usize>, T)>,
    /// The input indices that fail on their own, and why; in input order.
    pub poison: Vec<(usize, Failure)>,
}

impl<'c> Poller<'c> {
    pub fn new(consumer: &'c CommittingConsumer) -> Self {
        Self { consumer, held: Mutex::new(VecDeque::new()), paused: AtomicBool::new(false) }
    }

    /// The consumer polled.
    pub fn consumer(&self) -> &'c CommittingConsumer {
        self.consumer
    }

    fn take_held(&self) -> Option<BorrowedMessage<'c>> {
        self.held.lock().ok()?.pop_front()
    }

    /// The next record (held ones first), waiting for one; `None` once
    /// shutdown is requested.
    pub async fn next(&self, shutdown: &Shutdown) -> Option<BorrowedMessage<'c>> {
        if let Some(message) = self.take_held() {
            return Some(message);
        }
        loop {
            let received = tokio::select! {
                biased;
                () = shutdown.cancelled() => return None,
                received = self.consumer.recv() => received,
            };
            match received {
                Ok(message) => return Some(message),
                Err(error) => tracing::warn!(%error, "consumer reported an error; librdkafka retries by itself"),
            }
        }
    }

    /// The next record already here (held or buffered), never waiting.
    pub fn next_buffered(&self) -> Option<BorrowedMessage<'c>> {
        if let Some(message) = self.take_held() {
            return Some(message);
        }
        match self.consumer.recv().now_or_never() {
            Some(Ok(message)) => Some(message),
            Some(Err(error)) => {
                tracing::warn!(%error, "consumer reported an error; librdkafka retries by itself");
                None
            }
            None => None,
        }
    }

    /// The next batch: one record (waiting for it), then whatever is
    /// already here, up to `max` records, never waiting for more; `None`
    /// once shutdown is requested. A batch is what one transaction applies.
    pub async fn next_batch(&self, shutdown: &Shutdown, max: usize) -> Option<Vec<BorrowedMessage<'c>>> {
        let mut batch = vec![self.next(shutdown).await?];
        while batch.len() < max {
            match self.next_buffered() {
                Some(message) => batch.push(message),
                None => break,
            }
        }
        Some(batch)
    }

    /// Pauses the assignment (once) and polls the consumer for `delay`,
    /// holding what arrives; `false` if shutdown was requested.
    pub async fn wait(&self, delay: Duration, shutdown: &Shutdown) -> bool {
        if !self.paused.swap(true, Ordering::SeqCst) {
            self.set_paused(true);
        }
        let deadline = tokio::time::Instant::now() + delay;
        loop {
            self.poll_into_held();
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return true;
            }
            let tick = (deadline - now).min(POLL_TICK);
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep(tick) => {},
            }
        }
    }

    /// Resumes the assignment if a retry paused it.
    pub fn resume(&self) {
        if self.paused.swap(false, Ordering::SeqCst) {
            self.set_paused(false);
        }
    }

    /// One poll of the consumer: keeps the group membership alive and
    /// serves rebalances; records already fetched are held for later.
    fn poll_into_held(&self) {
        loop {
            match self.consumer.recv().now_or_never() {
                Some(Ok(message)) => match self.held.lock() {
                    Ok(mut held) => held.push_back(message),
                    Err(_) => return,
                },
                Some(Err(error)) => {
                    tracing::warn!(%error, "consumer reported an error while retrying");
                    return;
                }
                None => return,
            }
        }
    }

    fn set_paused(&self, pause: bool) {
        let assignment = match self.consumer.assignment() {
            Ok(assignment) => assignment,
            Err(error) => {
                tracing::warn!(%error, "could not read the assignment to pause or resume it");
                return;
            }
        };
        let result = if pause { self.consumer.pause(&assignment) } else { self.consumer.resume(&assignment) };
        match result {
            Ok(()) => {
                tracing::info!(partitions = assignment.count(), pause, "partitions paused or resumed for a retry")
            }
            Err(error) => tracing::warn!(%error, pause, "could not pause or resume the assignment"),
        }
    }

    /// Runs `attempt` until it succeeds or fails permanently, retrying
    /// transient failures with capped exponential backoff while the
    /// consumer keeps polling.
    pub async fn retry<T, F>(
        &self,
        backoff: Backoff,
        shutdown: &Shutdown,
        what: &str,
        mut attempt: impl FnMut() -> F,
    ) -> Step<T>
    where
        F: Future<Output = Result<T, Failure>>,
    {
        let mut delay = backoff.first;
        let mut retried = false;
        loop {
            match attempt().await {
                Ok(value) => {
                    if retried {
                        self.resume();
                    }
                    return Step::Done(value);
                }
                Err(failure @ Failure::Permanent { .. }) => {
                    if retried {
                        self.resume();
                    }
                    return Step::Permanent(failure);
                }
                Err(Failure::Transient(error)) => {
                    tracing::warn!(%error, what, retry_in_ms = delay.as_millis() as u64, "failed; retrying");
                    retried = true;
                    if !self.wait(delay, shutdown).await {
                        return Step::Interrupted;
                    }
                    delay = (delay * 2).min(backoff.max);
                }
            }
        }
    }

    /// Like [`Poller::retry`] for a step whose every failure is transient
    /// (decoding, parking, publishing); `None` if shutdown interrupted it.
    pub async fn retry_transient<T, E, F>(
        &self,
        backoff: Backoff,
        shutdown: &Shutdown,
        what: &str,
        mut attempt: impl FnMut() -> F,
    ) -> Option<T>
    where
        E: Display,
        F: Future<Output = Result<T, E>>,
    {
        let step = self.retry(backoff, shutdown, what, || attempt().map(|result| result.map_err(Failure::transient)));
        match step.await {
            Step::Done(value) => Some(value),
            Step::Permanent(_) | Step::Interrupted => None,
        }
    }

    /// Applies `items` with `apply` in as few calls as the failures allow:
    /// the whole slice first; a slice that fails permanently is split in
    /// halves, until a single item that fails permanently is poison. Order
    /// is kept: a sub-slice is applied only after every earlier one.
    /// `None` if shutdown interrupted it (nothing after the last `done`
    /// range was applied).
    pub async fn isolate<'i, I, T, F>(
        &self,
        backoff: Backoff,
        shutdown: &Shutdown,
        what: &str,
        items: &'i [I],
        mut apply: impl FnMut(&'i [I]) -> F,
    ) -> Option<Isolated<T>>
    where
        F: Future<Output = Result<T, Failure>>,
    {
        let mut outcome = Isolated { done: Vec::new(), poison: Vec::new() };
        if items.is_empty() {
            return Some(outcome);
        }
        let mut pending: VecDeque<Range<usize>> = VecDeque::new();
        pending.push_back(0..items.len());
        while let Some(range) = pending.pop_front() {
            let slice = items.get(range.clone()).unwrap_or_default();
            match self.retry(backoff, shutdown, what, || apply(slice)).await {
                Step::Done(value) => outcome.done.push((range, value)),
                Step::Interrupted => return None,
                Step::Permanent(failure) if range.len() == 1 => outcome.poison.push((range.start, failure)),
                Step::Permanent(failure) => {
                    tracing::warn!(%failure, what, records = range.len(), "batch failed for good; isolating the poison");
                    let middle = range.start + range.len() / 2;
                    pending.push_front(middle..range.end);
                    pending.push_front(range.start..middle);
                }
            }
        }
        Some(outcome)
    }
}
