//! The registry's durable state: a compacted, single-partition Kafka topic,
//! read from the beginning by one background reader that applies every record
//! to the in-memory [`Store`], and appended to by one writer at a time — the
//! design of Confluent's `KafkaStore`.
//!
//! Guarantees:
//! - **Complete on start**: [`KafkaStore::open`] returns only once the reader
//!   has applied the topic up to the high watermark it saw on start.
//! - **Read-your-writes**: a write is produced with `acks=all` by the
//!   idempotent producer, and [`KafkaStore::write`] returns only after this
//!   instance's reader has applied the written offset; the answer a client
//!   gets is already visible to its next request.
//! - **One writer per process**: writes are serialized by a lock; each first
//!   catches up to the end of the log, then plans against that state.
//!
//! A second instance on the same topic reads every record too, so it serves
//! reads and converges on the same state (it sees another instance's writes
//! within its reader's lag, not at once). Writers in two instances are *not*
//! coordinated — Confluent elects a leader for that; we do not. Two
//! registrations racing in two instances can pick the same new id or version
//! number: for ids, every reader keeps the schema that reached the log first
//! and ignores the other (so ids stay unambiguous), but the losing client was
//! told an id that does not mean its schema. Run exactly one writing instance
//! (point every producer and the schema-evolution workflow at it); extra
//! instances are for reads only.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use mamochi_common::kafka::{self, TopicSpec};
use mamochi_common::Settings;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::errors::ApiError;
use crate::kafka_log::{self, LogRecord};
use crate::store::{Plan, Store};

/// The topic has one partition, so the log has one order.
const PARTITION: i32 = 0;
/// How long a write, or catching up with the log, may take (Confluent's
/// `kafkastore.timeout.ms` is 500 ms; a broker failover here takes longer).
const TIMEOUT: Duration = Duration::from_secs(30);
/// Loading a large topic on start may take longer than one write.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// The shared state and the means to change it.
pub struct KafkaStore {
    state: Arc<RwLock<Store>>,
    /// Offset of the next record the reader will apply.
    applied: watch::Receiver<i64>,
    producer: FutureProducer,
    topic: String,
    writer: Mutex<()>,
}

impl std::fmt::Debug for KafkaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // rdkafka's producer has no `Debug`.
        f.debug_struct("KafkaStore").field("topic", &self.topic).finish_non_exhaustive()
    }
}

impl KafkaStore {
    /// Creates the topic if needed, starts the reader (stopped by `stop`) and
    /// waits until it has applied everything already in the topic.
    pub async fn open(settings: &Settings, stop: CancellationToken) -> anyhow::Result<(Self, JoinHandle<()>)> {
        let topic = settings.registry.topic.clone();
        let admin = kafka::admin(&settings.kafka).context("while creating the Kafka admin client")?;
        let spec = TopicSpec {
            name: &topic,
            partitions: 1,
            replication: None,
            config: vec![("cleanup.policy", "compact".to_string())],
        };
        kafka::ensure_topics(&admin, &[spec]).await.with_context(|| format!("while creating topic {topic}"))?;
        let producer = kafka::producer(&settings.kafka, "registry").context("while creating the producer")?;

        // No consumer group: the reader always reads the whole log, so there is
        // no offset to commit (hence a throwaway group id and no auto-commit).
        let mut config = kafka::consumer_config(
            &settings.kafka,
            &format!("mamochi-registry-{}", uuid::Uuid::new_v4()),
            "registry-reader",
        );
        config.set("enable.auto.commit", "false");
        let consumer: StreamConsumer = config.create().context("while creating the reader")?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&topic, PARTITION, Offset::Beginning)
            .context("while assigning the partition")?;
        consumer.assign(&assignment).context("while assigning the partition")?;

        let state = Arc::new(RwLock::new(Store::default()));
        let (applied_tx, applied) = watch::channel(0);
        let reader = tokio::spawn(read_log(consumer, state.clone(), applied_tx, stop));
        let store = Self { state, applied, producer, topic, writer: Mutex::new(()) };
        store.catch_up(STARTUP_TIMEOUT).await.context("while loading the registry's state from Kafka")?;
        tracing::info!(topic = %store.topic, max_id = store.read(Store::max_id), "registry state loaded");
        Ok((store, reader))
    }

    /// Runs `query` on the current state.
    pub fn read<R>(&self, query: impl FnOnce(&Store) -> R) -> R {
        // A panic while applying a record cannot leave the maps half-updated in
        // a way that breaks reads, so a poisoned lock is still usable.
        query(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Plans a change against the latest state, appends its records and waits
    /// until this instance has applied them; returns the plan's outcome.
    pub async fn write<T>(&self, plan: impl FnOnce(&Store) -> Result<Plan<T>, ApiError>) -> Result<T, ApiError> {
        let _only_writer = self.writer.lock().await;
        self.catch_up(TIMEOUT).await.map_err(|error| match error {
            CatchUpError::Timeout => ApiError::Timeout,
            other => ApiError::Store(other.into()),
        })?;
        let plan = self.read(plan)?;
        let mut last_offset = None;
        for record in &plan.records {
            last_offset = Some(self.append(record).await?);
        }
        if let Some(offset) = last_offset {
            self.wait_until_applied(offset + 1, TIMEOUT).await.map_err(|error| match error {
                CatchUpError::Timeout => ApiError::Timeout,
                other => ApiError::Store(other.into()),
            })?;
        }
        Ok(plan.outcome)
    }

    /// Produces one record and returns its offset.
    async fn append(&self, record: &LogRecord) -> Result<i64, ApiError> {
        let (key, value) = kafka_log::encode(record).map_err(|error| ApiError::Store(error.into()))?;
        let mut message = FutureRecord::<[u8], [u8]>::to(&self.topic).partition(PARTITION).key(&key);
        if let Some(value) = &value {
            message = message.payload(value);
        }
        match self.producer.send(message, Timeout::After(TIMEOUT)).await {
            Ok(delivery) => Ok(delivery.offset),
            Err((error, _)) => {
                Err(ApiError::Store(anyhow::Error::new(error).context("while writing to the registry topic")))
            }
        }
    }

    /// Waits until the reader has applied everything in the log now.
    async fn catch_up(&self, timeout: Duration) -> Result<(), CatchUpError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let high = loop {
            match self.high_watermark(timeout).await {
                Ok(high) => break high,
                // A topic created a moment ago may not be in every broker's
                // metadata yet, and a leader election leaves a partition
                // leaderless for a while: both pass, so retry until the deadline.
                Err(CatchUpError::Kafka(error)) if is_transient(&error) && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(%error, "end of the registry topic not known yet; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => return Err(error),
            }
        };
        self.wait_until_applied(high, deadline.saturating_duration_since(tokio::time::Instant::now())).await
    }

    /// The offset after the last record of the topic.
    async fn high_watermark(&self, timeout: Duration) -> Result<i64, CatchUpError> {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        // `fetch_watermarks` blocks on a broker round trip.
        let (_low, high) =
            tokio::task::spawn_blocking(move || producer.client().fetch_watermarks(&topic, PARTITION, timeout))
                .await
                .map_err(|_| CatchUpError::ReaderStopped)??;
        Ok(high)
    }

    async fn wait_until_applied(&self, next_offset: i64, timeout: Duration) -> Result<(), CatchUpError> {
        let mut applied = self.applied.clone();
        let reached = async move { applied.wait_for(|&applied| applied >= next_offset).await.map(|_| ()) };
        match tokio::time::timeout(timeout, reached).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(CatchUpError::ReaderStopped),
            Err(_) => Err(CatchUpError::Timeout),
        }
    }
}

/// Why the reader could not reach a point of the log.
#[derive(Debug, thiserror::Error)]
enum CatchUpError {
    #[error("timed out waiting for the registry's reader")]
    Timeout,
    #[error("the registry's reader has stopped")]
    ReaderStopped,
    #[error("could not read the end of the registry topic: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// Errors that go away by themselves while a topic is created or a leader elected.
fn is_transient(error: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    matches!(
        error.rdkafka_error_code(),
        Some(
            Code::UnknownTopicOrPartition
                | Code::UnknownPartition
                | Code::UnknownTopic
                | Code::LeaderNotAvailable
                | Code::NotLeaderForPartition
                | Code::OperationTimedOut
                | Code::RequestTimedOut
                | Code::BrokerTransportFailure
        )
    )
}

/// The reader: applies every record in order and publishes its progress.
async fn read_log(
    consumer: StreamConsumer,
    state: Arc<RwLock<Store>>,
    applied: watch::Sender<i64>,
    stop: CancellationToken,
) {
    let mut stream = consumer.stream();
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => break,
            next = stream.next() => next,
        };
        match next {
            Some(Ok(message)) => {
                let offset = message.offset();
                match kafka_log::decode(message.key(), message.payload()) {
                    Ok(LogRecord::Ignored(keytype)) => tracing::debug!(offset, %keytype, "skipping unmanaged record"),
                    Ok(record) => state.write().unwrap_or_else(PoisonError::into_inner).apply(record),
                    // A record we cannot read must not stop the registry: it may come
                    // from a newer Confluent server sharing the topic.
                    Err(error) => tracing::warn!(offset, %error, "skipping unreadable record"),
                }
                applied.send_replace(offset + 1);
            }
            // librdkafka reports transient broker trouble here and recovers by itself.
            Some(Err(error)) => tracing::warn!(%error, "error while reading the registry topic"),
            None => break,
        }
    }
    tracing::debug!("registry reader stopped");
}
