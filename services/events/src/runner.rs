//! The at-least-once consumer loop every service runs, one record at a time
//! (the batched loops of accounting, the distributor and approval use the
//! same pieces: [`Poller`] and [`crate::failure`]).
//!
//! For each record: decode it (or park it in the dead letters), hand it to the
//! service's handler, and only when the handler returns `Ok` — its effect is
//! committed — store the record's offset. A transient handler failure (the
//! database is down, say) is retried with capped exponential backoff on the
//! same record, so a partition never skips ahead; meanwhile the assignment
//! is paused and the consumer keeps polling, so the group never evicts it
//! however long the outage. A handler that rejects a record for good parks
//! it (reason and provenance headers, `mamochi_kafka_dead_letters_total`)
//! and moves on. Offsets are committed in the background, on revocation and
//! on shutdown (see `mamochi_common::kafka`); an offset refused because its
//! partition moved away is logged, never fatal.
//!
//! Guarantee: every record's effect happens at least once; handlers make it
//! exactly once in effect by recording the event id in the same database
//! transaction as the effect. Limit: a record whose effect committed but whose
//! offset was not yet committed when the process died is handled again.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mamochi_common::kafka::{self, CommittingConsumer};
use mamochi_common::kafka_metrics::KafkaMetrics;
use mamochi_common::shutdown::Shutdown;
use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Message};
use serde::de::DeserializeOwned;

use crate::codec::EventCodec;
use crate::consume::{decode_or_park, DecodeStepError, Decoded};
use crate::dead_letter::DeadLetters;
use crate::failure::{reasons, Failure};
use crate::poller::Poller;
use crate::AvroSchemaSource;

/// A decoded record and where it came from.
#[derive(Debug, Clone)]
pub struct Envelope<T> {
    pub value: T,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Broker timestamp (create time), in milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
}

/// Why a handler did not finish a record.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying: the effect did not commit and may next time.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Never going to succeed for this record; it is parked.
    #[error("rejected: {0}")]
    Rejected(String),
}

/// What a service does with each record of type `T`.
pub trait Handler<T>: Send + Sync {
    fn handle(&self, envelope: Envelope<T>) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Retry pacing for transient failures.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { first: Duration::from_millis(100), max: Duration::from_secs(5) }
    }
}

/// Everything the loop needs besides the handler.
#[derive(Debug, Clone)]
pub struct Runner {
    pub codec: Arc<EventCodec>,
    pub dead_letters: DeadLetters,
    pub backoff: Backoff,
    /// Where records consumed and their handling time are counted.
    pub metrics: KafkaMetrics,
}

impl From<Failure> for HandlerError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Transient(error) => HandlerError::Transient(anyhow::anyhow!(error)),
            Failure::Permanent { reason, detail } => HandlerError::Rejected(format!("{reason}: {detail}")),
        }
    }
}

impl Runner {
    /// Consumes until `shutdown` is cancelled, then commits and returns.
    /// A transient failure pauses the assignment and keeps polling (see
    /// [`Poller`]); an offset that cannot be stored because the partition
    /// moved away is logged, not fatal.
    pub async fn run<T, H>(
        &self,
        consumer: &CommittingConsumer,
        handler: &H,
        shutdown: &Shutdown,
    ) -> Result<(), rdkafka::error::KafkaError>
    where
        T: AvroSchemaSource + DeserializeOwned + Send,
        H: Handler<T>,
    {
        let poller = Poller::new(consumer);
        while let Some(message) = poller.next(shutdown).await {
            if !self.process_polling(&message, handler, &poller, shutdown).await {
                break;
            }
            store_offset(consumer, &message);
        }
        kafka::commit_stored_offsets(consumer);
        Ok(())
    }

    /// Handles one record to completion; `false` if shutdown interrupted it
    /// (its offset must then not be stored). Retries without polling the
    /// consumer: loops use [`Runner::process_polling`].
    pub async fn process<T, H>(&self, message: &BorrowedMessage<'_>, handler: &H, shutdown: &Shutdown) -> bool
    where
        T: AvroSchemaSource + DeserializeOwned + Send,
        H: Handler<T>,
    {
        self.process_inner(message, handler, None, shutdown).await
    }

    /// Handles one record to completion while `poller` keeps the consumer
    /// alive; `false` if shutdown interrupted it.
    pub async fn process_polling<T, H>(
        &self,
        message: &BorrowedMessage<'_>,
        handler: &H,
        poller: &Poller<'_>,
        shutdown: &Shutdown,
    ) -> bool
    where
        T: AvroSchemaSource + DeserializeOwned + Send,
        H: Handler<T>,
    {
        self.process_inner(message, handler, Some(poller), shutdown).await
    }

    async fn process_inner<T, H>(
        &self,
        message: &BorrowedMessage<'_>,
        handler: &H,
        poller: Option<&Poller<'_>>,
        shutdown: &Shutdown,
    ) -> bool
    where
        T: AvroSchemaSource + DeserializeOwned + Send,
        H: Handler<T>,
    {
        let started = Instant::now();
        self.metrics.consumed.with_label_values(&[message.topic()]).inc();
        let mut delay = self.backoff.first;
        let mut paused = false;
        loop {
            let outcome = self.attempt(message, handler).await;
            match outcome {
                Ok(()) => {
                    if paused {
                        if let Some(poller) = poller {
                            poller.resume();
                        }
                    }
                    let elapsed = started.elapsed().as_secs_f64();
                    self.metrics.handle_seconds.with_label_values(&[message.topic()]).observe(elapsed);
                    return true;
                }
                Err(reason) => {
                    tracing::warn!(
                        topic = message.topic(),
                        partition = message.partition(),
                        offset = message.offset(),
                        error = %reason,
                        retry_in_ms = delay.as_millis() as u64,
                        "record not processed; retrying"
                    );
                    let waited = match poller {
                        Some(poller) => {
                            paused = true;
                            poller.wait(delay, shutdown).await
                        }
                        None => tokio::select! {
                            () = shutdown.cancelled() => false,
                            () = tokio::time::sleep(delay) => true,
                        },
                    };
                    if !waited {
                        return false;
                    }
                    delay = (delay * 2).min(self.backoff.max);
                }
            }
        }
    }

    /// Parks `message` (a permanent failure), retrying the dead-letter write
    /// while `poller` keeps the consumer alive; `false` if shutdown
    /// interrupted it.
    pub async fn park(
        &self,
        poller: &Poller<'_>,
        shutdown: &Shutdown,
        message: &BorrowedMessage<'_>,
        reason: &str,
        error: &(dyn std::fmt::Display + Sync),
    ) -> bool {
        tracing::warn!(partition = message.partition(), offset = message.offset(), reason, %error, "record refused; parking it");
        let attempt = || self.dead_letters.park(message, reason, error);
        poller.retry_transient(self.backoff, shutdown, "park a refused record", attempt).await.is_some()
    }

    /// Decodes `message` (parking it if it never will decode), retrying
    /// transient failures while `poller` keeps the consumer alive. `None` if
    /// shutdown interrupted it; `Some(None)` if the record was parked.
    pub async fn decode<T>(
        &self,
        poller: &Poller<'_>,
        shutdown: &Shutdown,
        message: &BorrowedMessage<'_>,
    ) -> Option<Option<T>>
    where
        T: AvroSchemaSource + DeserializeOwned,
    {
        let decode = || decode_or_park::<T>(&self.codec, &self.dead_letters, message);
        match poller.retry_transient(self.backoff, shutdown, "decode a record", decode).await? {
            Decoded::Event(value) => Some(Some(value)),
            Decoded::Parked(_) => Some(None),
        }
    }

    /// One try: decode (or park), handle (or park if rejected).
    async fn attempt<T, H>(&self, message: &BorrowedMessage<'_>, handler: &H) -> Result<(), String>
    where
        T: AvroSchemaSource + DeserializeOwned + Send,
        H: Handler<T>,
    {
        let value = match decode_or_park::<T>(&self.codec, &self.dead_letters, message).await {
            Ok(Decoded::Event(value)) => value,
            Ok(Decoded::Parked(_)) => return Ok(()),
            Err(DecodeStepError::Transient(error)) => return Err(error.to_string()),
            Err(DecodeStepError::DeadLetter(error)) => return Err(format!("dead-letter write failed: {error}")),
        };
        let envelope = Envelope {
            value,
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
        };
        match handler.handle(envelope).await {
            Ok(()) => Ok(()),
            Err(HandlerError::Transient(error)) => Err(format!("{error:#}")),
            Err(HandlerError::Rejected(reason)) => self
                .dead_letters
                .park(message, reasons::HANDLER_REJECTED, &reason)
                .await
                .map_err(|error| format!("dead-letter write failed: {error}")),
        }
    }
}

/// Stores a finished record's offset. A partition that moved to another
/// consumer meanwhile refuses it: its new owner re-reads from the last
/// commit and the handler's dedupe absorbs the repeat, so this is logged,
/// never fatal.
pub fn store_offset(consumer: &CommittingConsumer, message: &BorrowedMessage<'_>) {
    if let Err(error) = consumer.store_offset_from_message(message) {
        tracing::warn!(%error, topic = message.topic(), partition = message.partition(), offset = message.offset(), "offset not stored; the partition moved");
    }
}
