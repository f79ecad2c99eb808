//! The at-least-once consumer loop every service runs.
//!
//! For each record: decode it (or park it in the dead letters), hand it to the
//! service's handler, and only when the handler returns `Ok` — its effect is
//! committed — store the record's offset. A transient handler failure (the
//! database is down, say) is retried with capped exponential backoff on the
//! same record, so a partition never skips ahead; a handler that rejects a
//! record for good parks it and moves on. Offsets are committed in the
//! background, on revocation and on shutdown (see `mamochi_common::kafka`).
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

impl Runner {
    /// Consumes until `shutdown` is cancelled, then commits and returns.
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
        loop {
            let message = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                received = consumer.recv() => received,
            };
            match message {
                Ok(message) => {
                    if !self.process(&message, handler, shutdown).await {
                        break;
                    }
                    consumer.store_offset_from_message(&message)?;
                }
                Err(error) => {
                    tracing::warn!(%error, "consumer reported an error; librdkafka retries by itself")
                }
            }
        }
        kafka::commit_stored_offsets(consumer);
        Ok(())
    }

    /// Handles one record to completion; `false` if shutdown interrupted it
    /// (its offset must then not be stored).
    pub async fn process<T, H>(&self, message: &BorrowedMessage<'_>, handler: &H, shutdown: &Shutdown) -> bool
    where
        T: AvroSchemaSource + DeserializeOwned + Send,
        H: Handler<T>,
    {
        let started = Instant::now();
        self.metrics.consumed.with_label_values(&[message.topic()]).inc();
        let mut delay = self.backoff.first;
        loop {
            let outcome = self.attempt(message, handler).await;
            match outcome {
                Ok(()) => {
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
                    tokio::select! {
                        () = shutdown.cancelled() => return false,
                        () = tokio::time::sleep(delay) => {},
                    }
                    delay = (delay * 2).min(self.backoff.max);
                }
            }
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
                .park(message, "handler_rejected", &reason)
                .await
                .map_err(|error| format!("dead-letter write failed: {error}")),
        }
    }
}
