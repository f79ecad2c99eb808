//! The registry's durable state: a compacted, single-partition Kafka topic,
//! read from the beginning by one background reader that applies every record
//! to the in-memory [`Store`], and appended to only by the instance elected
//! writer (see [`crate::election`]) — the design of Confluent's `KafkaStore`
//! with its leader.
//!
//! Guarantees:
//! - **Complete on start**: [`KafkaStore::open`] returns only once the reader
//!   has applied the topic up to the high watermark it saw on start.
//! - **One writer, fenced**: only the instance holding the election's
//!   partition writes, through a transactional producer whose
//!   `transactional.id` is fixed for the registry. Taking office calls
//!   `init_transactions`, which fences every earlier producer with that id: a
//!   deposed writer (paused, partitioned, not yet told) fails to commit and
//!   steps down; it can never append after another took over. Each write is
//!   one transaction, and the reader reads `read_committed`, so a write is
//!   applied whole or not at all.
//! - **Plans against the whole log**: taking office catches up with the log
//!   after fencing (so every record the previous writer committed is applied),
//!   and writes are serialized by a lock; each first catches up to the end of
//!   the log, then plans against that state. So two registrations can never
//!   pick the same new id or version number.
//! - **Read-your-writes**: [`KafkaStore::write`] returns only after this
//!   instance's reader has applied the committed transaction; an instance that
//!   forwarded a write waits for its own reader to reach the offset the writer
//!   reports ([`KafkaStore::wait_until_applied_offset`]).
//!
//! Every instance serves reads from its own state, which follows the log
//! within its reader's lag. Transaction markers are never delivered to the
//! reader, so its progress is its consumer's position (published every
//! [`POSITION_INTERVAL`]), not only the offset of the last record it applied.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use mamochi_common::config::KafkaSettings;
use mamochi_common::kafka::{self, TopicSpec};
use mamochi_common::Settings;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{watch, Mutex, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::election::{self, Announcement, ElectionNames};
use crate::errors::ApiError;
use crate::kafka_log::{self, LogRecord};
use crate::store::{Plan, Store};

/// The topics have one partition, so each log has one order.
const PARTITION: i32 = 0;
/// How long a write, or catching up with the log, may take (Confluent's
/// `kafkastore.timeout.ms` is 500 ms; a broker failover here takes longer).
const TIMEOUT: Duration = Duration::from_secs(30);
/// Loading a large topic on start may take longer than one write.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause before taking office again after a failed attempt or being fenced,
/// so two instances that both believe they hold the partition do not fence
/// each other in a tight loop while the group settles.
const RETRY_OFFICE: Duration = Duration::from_secs(2);
/// How often the reader publishes its position, which moves past transaction
/// markers without a record to apply: the delay a write's read-your-writes
/// wait can add.
const POSITION_INTERVAL: Duration = Duration::from_millis(20);

/// Who writes, as this instance knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Leader {
    /// This instance is the writer (in office, producer not fenced).
    this_instance: bool,
    /// URL of the latest writer announced in the election topic.
    announced: Option<String>,
}

/// Where a write request should go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteRoute {
    /// This instance is the writer.
    Here,
    /// Another instance is: its base URL.
    Forward(String),
    /// No writer is known (an election is under way).
    NoWriter,
}

/// The shared state and the means to change it.
pub struct KafkaStore {
    state: Arc<RwLock<Store>>,
    /// Offset of the next record the reader will apply.
    applied: watch::Receiver<i64>,
    /// A plain client, for reading the end of the topic.
    metadata: FutureProducer,
    topic: String,
    names: ElectionNames,
    kafka: KafkaSettings,
    /// This instance's URL, as announced when it is the writer.
    own_url: String,
    /// The transactional producer while this instance is the writer; its
    /// lock serializes writes.
    office: Mutex<Option<FutureProducer>>,
    leader: watch::Sender<Leader>,
    /// Signalled when a write finds this instance fenced.
    fenced: Notify,
}

impl std::fmt::Debug for KafkaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // rdkafka's producer has no `Debug`.
        f.debug_struct("KafkaStore").field("topic", &self.topic).finish_non_exhaustive()
    }
}

impl KafkaStore {
    /// Creates the state and election topics if needed, starts the reader
    /// (stopped by `stop`) and waits until it has applied everything already
    /// in the state topic. `own_url` is what this instance announces when elected.
    pub async fn open(
        settings: &Settings,
        own_url: String,
        stop: CancellationToken,
    ) -> anyhow::Result<(Self, JoinHandle<()>)> {
        let topic = settings.registry.topic.clone();
        let names = ElectionNames::new(settings);
        let admin = kafka::admin(&settings.kafka).context("while creating the Kafka admin client")?;
        let compacted = |name| TopicSpec {
            name,
            partitions: 1,
            replication: None,
            config: vec![("cleanup.policy", "compact".to_string())],
        };
        kafka::ensure_topics(&admin, &[compacted(&topic), compacted(&names.topic)])
            .await
            .with_context(|| format!("while creating topics {topic} and {}", names.topic))?;
        let metadata = kafka::producer(&settings.kafka, "registry").context("while creating the producer")?;

        // No consumer group: the reader always reads the whole log, so there is
        // no offset to commit (hence a throwaway group id and no auto-commit).
        // It reads only committed transactions (`consumer_config`'s
        // `read_committed`).
        let mut config = kafka::consumer_config(
            &settings.kafka,
            &format!("mamochi-registry-{}", uuid::Uuid::new_v4()),
            "registry-reader",
        );
        config.set("enable.auto.commit", "false");
        let consumer: StreamConsumer = config.create().context("while creating the reader")?;
        let mut assignment = TopicPartitionList::new();
        for name in [&topic, &names.topic] {
            assignment
                .add_partition_offset(name, PARTITION, Offset::Beginning)
                .context("while assigning the partitions")?;
        }
        consumer.assign(&assignment).context("while assigning the partitions")?;

        let state = Arc::new(RwLock::new(Store::default()));
        let (applied_tx, applied) = watch::channel(0);
        let leader = watch::Sender::new(Leader::default());
        let reader = Reader { topic: topic.clone(), state: state.clone(), applied: applied_tx, leader: leader.clone() };
        let reader = tokio::spawn(reader.run(consumer, stop));
        let store = Self {
            state,
            applied,
            metadata,
            topic,
            names,
            kafka: settings.kafka.clone(),
            own_url,
            office: Mutex::new(None),
            leader,
            fenced: Notify::new(),
        };
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

    /// Whether this instance is the writer now.
    pub fn is_writer(&self) -> bool {
        self.leader.borrow().this_instance
    }

    /// Offset of the next record this instance's reader will apply.
    pub fn applied_offset(&self) -> i64 {
        *self.applied.borrow()
    }

    /// Where a write should go, waiting up to `wait` for a writer to be known.
    /// An announcement naming this instance's own URL while it is not the
    /// writer is stale (a previous run of it), so it does not count.
    /// `unreachable` is a writer URL that just failed to answer: wait for another.
    pub async fn route_write(&self, wait: Duration, unreachable: Option<&str>) -> WriteRoute {
        let mut leader = self.leader.subscribe();
        let known = leader.wait_for(|leader| {
            leader.this_instance
                || leader.announced.as_deref().is_some_and(|url| url != self.own_url && Some(url) != unreachable)
        });
        let route = match tokio::time::timeout(wait, known).await {
            Ok(Ok(leader)) if leader.this_instance => WriteRoute::Here,
            Ok(Ok(leader)) => leader.announced.clone().map_or(WriteRoute::NoWriter, WriteRoute::Forward),
            Ok(Err(_)) | Err(_) => WriteRoute::NoWriter,
        };
        route
    }

    /// Plans a change against the latest state, commits its records in one
    /// transaction and waits until this instance has applied them; returns
    /// the plan's outcome. Fails with [`ApiError::NoWriter`] unless this
    /// instance is the writer.
    pub async fn write<T>(&self, plan: impl FnOnce(&Store) -> Result<Plan<T>, ApiError>) -> Result<T, ApiError> {
        let mut office = self.office.lock().await;
        let Some(producer) = office.clone() else { return Err(ApiError::NoWriter) };
        self.catch_up(TIMEOUT).await.map_err(CatchUpError::into_api)?;
        let plan = self.read(plan)?;
        if plan.records.is_empty() {
            return Ok(plan.outcome);
        }
        let mut messages = Vec::with_capacity(plan.records.len());
        for record in &plan.records {
            let (key, value) = kafka_log::encode(record).map_err(|error| ApiError::Store(error.into()))?;
            messages.push((self.topic.as_str(), key, value));
        }
        match transact(&producer, &messages).await {
            Ok(last_offset) => {
                self.wait_until_applied(last_offset + 1, TIMEOUT).await.map_err(CatchUpError::into_api)?;
                Ok(plan.outcome)
            }
            Err(error) if producer.client().fatal_error().is_some() => {
                // Another instance took office (or the producer broke for
                // good): nothing of this write is visible; step down.
                tracing::warn!(%error, "registry writer fenced; stepping down");
                *office = None;
                self.leader.send_modify(|leader| leader.this_instance = false);
                self.fenced.notify_one();
                Err(ApiError::NoWriter)
            }
            Err(error) => {
                Err(ApiError::Store(anyhow::Error::new(error).context("while writing to the registry topic")))
            }
        }
    }

    /// Waits until this instance's reader has applied the log up to `next_offset`
    /// (the offset a writer reported after a forwarded write).
    pub async fn wait_until_applied_offset(&self, next_offset: i64) -> Result<(), ApiError> {
        self.wait_until_applied(next_offset, TIMEOUT).await.map_err(CatchUpError::into_api)
    }

    /// Holds office while the election says so, until `stop`: takes office
    /// each time this instance is assigned the election partition, and steps
    /// down when it loses it or finds itself fenced.
    pub async fn serve_term(self: Arc<Self>, mut holds: watch::Receiver<bool>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                held = holds.wait_for(|holds| *holds) => if held.is_err() { break },
            }
            if let Err(error) = self.take_office().await {
                tracing::warn!(error = format!("{error:#}"), "could not take office as registry writer; retrying");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(RETRY_OFFICE) => continue,
                }
            }
            let fenced = tokio::select! {
                () = stop.cancelled() => false,
                _ = holds.wait_for(|holds| !*holds) => false,
                () = self.fenced.notified() => true,
            };
            self.step_down().await;
            if stop.is_cancelled() {
                break;
            }
            if fenced {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(RETRY_OFFICE) => {}
                }
            }
        }
        self.step_down().await;
    }

    /// Fences every earlier writer, catches up with what they committed, and
    /// announces this instance as the writer.
    async fn take_office(&self) -> anyhow::Result<()> {
        let mut office = self.office.lock().await;
        let mut config = kafka::producer_config(&self.kafka, "registry-writer");
        // librdkafka refuses a message timeout longer than the transaction's.
        let transaction_timeout = TIMEOUT.as_millis().max(u128::from(self.kafka.message_timeout_ms));
        config
            .set("transactional.id", &self.names.transactional_id)
            .set("transaction.timeout.ms", transaction_timeout.to_string());
        let producer: FutureProducer = config.create().context("while creating the writer's producer")?;
        let init = producer.clone();
        // `init_transactions` completes or aborts the previous writer's open
        // transaction and bumps the epoch: from here on it cannot commit.
        tokio::task::spawn_blocking(move || init.init_transactions(Timeout::After(TIMEOUT)))
            .await
            .context("while fencing earlier writers")?
            .context("while fencing earlier writers")?;
        self.catch_up(TIMEOUT).await.context("while catching up with the previous writer")?;
        let announcement = Announcement { url: self.own_url.clone(), term: uuid::Uuid::new_v4().to_string() };
        let value = announcement.encode().context("while encoding the announcement")?;
        *office = Some(producer.clone());
        self.leader.send_modify(|leader| leader.this_instance = true);
        let announced =
            transact(&producer, &[(self.names.topic.as_str(), election::ANNOUNCEMENT_KEY.to_vec(), Some(value))]).await;
        if let Err(error) = announced {
            *office = None;
            self.leader.send_modify(|leader| leader.this_instance = false);
            return Err(anyhow::Error::new(error).context("while announcing the writer"));
        }
        tracing::info!(url = %self.own_url, topic = %self.topic, "this registry instance is the writer");
        Ok(())
    }

    /// Leaves office; unless fenced, first withdraws the announcement (a
    /// tombstone), so other instances wait for the next writer instead of
    /// forwarding to this one. The withdrawal cannot hide a successor's
    /// announcement: a successor fences this producer before announcing.
    async fn step_down(&self) {
        let mut office = self.office.lock().await;
        let producer = office.take();
        self.leader.send_modify(|leader| leader.this_instance = false);
        if let Some(producer) = producer {
            if producer.client().fatal_error().is_none() {
                let withdrawal = [(self.names.topic.as_str(), election::ANNOUNCEMENT_KEY.to_vec(), None)];
                if let Err(error) = transact(&producer, &withdrawal).await {
                    tracing::debug!(%error, "could not withdraw the writer announcement");
                }
            }
            drop(office);
            tracing::info!(topic = %self.topic, "this registry instance is no longer the writer");
            // Destroying a producer blocks while librdkafka shuts it down.
            if tokio::task::spawn_blocking(move || drop(producer)).await.is_err() {
                tracing::warn!("closing the registry writer's producer panicked");
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
        let producer = self.metadata.clone();
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

/// A record to produce: topic, key, and value (`None` is a tombstone).
type Outgoing<'a> = (&'a str, Vec<u8>, Option<Vec<u8>>);

/// Produces `messages` in one
/// transaction and returns the offset of the last; on failure the transaction
/// is aborted when it still can be.
async fn transact(producer: &FutureProducer, messages: &[Outgoing<'_>]) -> Result<i64, KafkaError> {
    producer.begin_transaction()?;
    let mut last_offset = -1;
    let mut failure = None;
    for (topic, key, value) in messages {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).partition(PARTITION).key(key);
        if let Some(value) = value {
            record = record.payload(value);
        }
        match producer.send(record, Timeout::After(TIMEOUT)).await {
            Ok(delivery) => last_offset = last_offset.max(delivery.offset),
            Err((error, _)) => {
                failure = Some(error);
                break;
            }
        }
    }
    let finishing = producer.clone();
    let committed = match failure {
        Some(error) => Err(error),
        None => tokio::task::spawn_blocking(move || finishing.commit_transaction(Timeout::After(TIMEOUT)))
            .await
            .unwrap_or(Err(KafkaError::Canceled)),
    };
    if let Err(error) = committed {
        if producer.client().fatal_error().is_none() {
            let aborting = producer.clone();
            let aborted =
                tokio::task::spawn_blocking(move || aborting.abort_transaction(Timeout::After(TIMEOUT))).await;
            if let Ok(Err(abort_error)) = aborted {
                tracing::warn!(%abort_error, "could not abort the registry's transaction");
            }
        }
        return Err(error);
    }
    Ok(last_offset)
}

/// Why the reader could not reach a point of the log.
#[derive(Debug, thiserror::Error)]
enum CatchUpError {
    #[error("timed out waiting for the registry's reader")]
    Timeout,
    #[error("the registry's reader has stopped")]
    ReaderStopped,
    #[error("could not read the end of the registry topic: {0}")]
    Kafka(#[from] KafkaError),
}

impl CatchUpError {
    fn into_api(self) -> ApiError {
        match self {
            Self::Timeout => ApiError::Timeout,
            other => ApiError::Store(other.into()),
        }
    }
}

/// Errors that go away by themselves while a topic is created or a leader elected.
fn is_transient(error: &KafkaError) -> bool {
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

/// The log reader: applies every state record in order, follows the writer's
/// announcements, and publishes its progress.
struct Reader {
    topic: String,
    state: Arc<RwLock<Store>>,
    applied: watch::Sender<i64>,
    leader: watch::Sender<Leader>,
}

impl Reader {
    async fn run(self, consumer: StreamConsumer, stop: CancellationToken) {
        let mut stream = consumer.stream();
        let mut tick = tokio::time::interval(POSITION_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => break,
                next = stream.next() => next,
                _ = tick.tick() => {
                    // Transaction markers are never delivered, but the position
                    // moves past them: that is how far the reader has come.
                    self.advance(position(&consumer, &self.topic));
                    continue;
                }
            };
            match next {
                Some(Ok(message)) if message.topic() == self.topic => {
                    self.apply(message.offset(), message.key(), message.payload());
                }
                Some(Ok(message)) => self.follow(message.offset(), message.payload()),
                // librdkafka reports transient broker trouble here and recovers by itself.
                Some(Err(error)) => tracing::warn!(%error, "error while reading the registry topic"),
                None => break,
            }
        }
        tracing::debug!("registry reader stopped");
    }

    fn apply(&self, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        match kafka_log::decode(key, value) {
            Ok(LogRecord::Ignored(keytype)) => tracing::debug!(offset, %keytype, "skipping unmanaged record"),
            Ok(record) => self.state.write().unwrap_or_else(PoisonError::into_inner).apply(record),
            // A record we cannot read must not stop the registry: it may come
            // from a newer Confluent server sharing the topic.
            Err(error) => tracing::warn!(offset, %error, "skipping unreadable record"),
        }
        self.advance(Some(offset + 1));
    }

    fn follow(&self, offset: i64, value: Option<&[u8]>) {
        match value.map(Announcement::decode) {
            Some(Ok(announcement)) => {
                tracing::info!(url = %announcement.url, "registry writer announced");
                self.leader.send_modify(|leader| leader.announced = Some(announcement.url));
            }
            Some(Err(error)) => tracing::warn!(offset, %error, "skipping unreadable writer announcement"),
            None => {
                tracing::info!("registry writer withdrew");
                self.leader.send_modify(|leader| leader.announced = None);
            }
        }
    }

    fn advance(&self, next_offset: Option<i64>) {
        if let Some(next_offset) = next_offset {
            self.applied.send_if_modified(|applied| {
                let moved = next_offset > *applied;
                *applied = (*applied).max(next_offset);
                moved
            });
        }
    }
}

/// The reader's position in the state topic, if it has one.
fn position(consumer: &StreamConsumer, topic: &str) -> Option<i64> {
    let positions = consumer.position().ok()?;
    match positions.find_partition(topic, PARTITION)?.offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}
