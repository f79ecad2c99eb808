//! Following one topic into an in-memory view: the loop every Kafka-fed view
//! of the gateway runs, so that each view keeps only its state and how a
//! record changes it.
//!
//! A [`Follower`] reads every partition of its topic with no group
//! membership and no commits (every gateway keeps a whole view; the group id
//! only satisfies the client), from where the view says ([`Start`]): the
//! beginning, or the first record written at or after a wall-clock instant.
//! It decodes each record and hands it to the view's `apply`, until
//! shutdown. An unreadable record is logged and skipped, so one bad record
//! never stops a view; consumer errors are left to librdkafka's own retries;
//! if the consumer cannot be set up, following starts over (from the same
//! kind of start) a second later.
//!
//! Starting offsets are fixed before the consumer is assigned: a timestamp
//! start on a partition with nothing newer begins at the end read then, not
//! at `Offset::End`, which librdkafka would resolve later, skipping a record
//! written in between. [`Progress`] says how far following got, for
//! readiness: [`Progress::following`] once the consumer is assigned to every
//! partition from those offsets (no record acknowledged after that can fall
//! before where the view started), [`Progress::caught_up`] once the view has
//! also applied every record up to the end each partition had when
//! following started. Both stay true once set, across restarts of the loop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mamochi_common::config::KafkaSettings;
use mamochi_common::kafka;
use mamochi_common::shutdown::Shutdown;
use mamochi_events::codec::EventCodec;
use mamochi_events::topics::Topic;
use mamochi_events::AvroSchemaSource;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde::de::DeserializeOwned;

/// How long one metadata, watermark or offset request may take.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait before setting the consumer up again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Where a view starts reading its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Every record the topic still holds (a compacted topic: the latest per key).
    Beginning,
    /// The records written this long ago or later, by the records'
    /// timestamps: the producers' wall clocks, so the window is measured on
    /// the wall clock too (not the platform's clock).
    Since(Duration),
}

/// How far a view's follower got; readiness reads it.
#[derive(Debug, Default)]
pub struct Progress {
    following: AtomicBool,
    caught_up: AtomicBool,
}

impl Progress {
    /// Whether the consumer is assigned to every partition from a concrete offset.
    pub fn following(&self) -> bool {
        self.following.load(Ordering::Relaxed)
    }

    /// Whether the view has applied everything that was on the topic (from
    /// its start) when it started following it.
    pub fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Relaxed)
    }
}

/// How one view follows one topic whose values are `R`.
#[derive(Debug)]
pub struct Follower<K: 'static, R: 'static> {
    pub topic: &'static Topic<K, R>,
    /// The view, as logs name it ("stock view").
    pub view: &'static str,
    /// The consumer's role: its client id suffix and (unused) group name.
    pub role: &'static str,
    pub start: Start,
}

impl<K, R: AvroSchemaSource + DeserializeOwned> Follower<K, R> {
    /// Follows the topic until `shutdown`, handing every readable record to
    /// `apply` and recording progress in `progress`; starts over if the
    /// consumer cannot be set up.
    pub async fn run(
        &self,
        settings: &KafkaSettings,
        codec: &EventCodec,
        shutdown: &Shutdown,
        progress: &Progress,
        apply: impl Fn(&R),
    ) {
        loop {
            match self.run_once(settings, codec, shutdown, progress, &apply).await {
                Ok(()) => return,
                Err(error) => tracing::warn!(
                    %error, view = self.view, topic = self.topic.name(),
                    "cannot follow the view's topic yet; retrying"
                ),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RETRY_AFTER) => {}
            }
        }
    }

    async fn run_once(
        &self,
        settings: &KafkaSettings,
        codec: &EventCodec,
        shutdown: &Shutdown,
        progress: &Progress,
        apply: &impl Fn(&R),
    ) -> Result<(), KafkaError> {
        let topic = self.topic.name();
        let admin = kafka::admin(settings)?;
        kafka::ensure_topics(&admin, &[self.topic.info.spec()]).await?;
        let mut config = kafka::consumer_config(settings, &settings.group(self.role), self.role);
        config.set("enable.auto.commit", "false");
        let consumer: Arc<StreamConsumer> = Arc::new(config.create()?);
        let since_ms = match self.start {
            Start::Beginning => None,
            Start::Since(window) => {
                Some((Utc::now() - chrono::Duration::from_std(window).unwrap_or_default()).timestamp_millis())
            }
        };
        let (assignment, extents) = {
            let consumer = consumer.clone();
            tokio::task::spawn_blocking(move || starting_point(&consumer, topic, since_ms))
                .await
                .map_err(|_| KafkaError::Global(RDKafkaErrorCode::Fail))??
        };
        consumer.assign(&assignment)?;
        if !progress.following.swap(true, Ordering::Relaxed) {
            tracing::info!(view = self.view, topic, "view following its topic");
        }
        let mut catch_up = CatchUp::new(extents);
        let mut applied: u64 = 0;
        if catch_up.done() {
            self.mark_caught_up(progress, applied);
        }
        loop {
            let message = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(()),
                received = consumer.recv() => received,
            };
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, view = self.view, "consumer error; librdkafka retries by itself");
                    continue;
                }
            };
            match codec.decode::<R>(message.payload()).await {
                Ok(record) => {
                    apply(&record);
                    applied += 1;
                }
                Err(error) => tracing::warn!(
                    %error, view = self.view, topic, partition = message.partition(), offset = message.offset(),
                    "view skipped an unreadable record"
                ),
            }
            // After `apply`: once caught up, the view holds the record.
            if catch_up.read(message.partition(), message.offset()) {
                self.mark_caught_up(progress, applied);
            }
        }
    }

    fn mark_caught_up(&self, progress: &Progress, applied: u64) {
        if !progress.caught_up.swap(true, Ordering::Relaxed) {
            tracing::info!(view = self.view, topic = self.topic.name(), applied, "view caught up with its topic");
        }
    }
}

/// One partition as following starts: the first offset to read and the
/// end (the next offset to be written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Extent {
    partition: i32,
    first: i64,
    end: i64,
}

/// The partitions still to be read up to the end they had when following
/// started.
#[derive(Debug)]
struct CatchUp {
    pending: HashMap<i32, i64>,
}

impl CatchUp {
    fn new(extents: Vec<Extent>) -> Self {
        let pending = extents.into_iter().filter(|e| e.end > e.first).map(|e| (e.partition, e.end)).collect();
        Self { pending }
    }

    fn done(&self) -> bool {
        self.pending.is_empty()
    }

    /// Notes that `offset` of `partition` was read; true when that was the
    /// last record still pending.
    fn read(&mut self, partition: i32, offset: i64) -> bool {
        match self.pending.get(&partition) {
            Some(end) if offset + 1 >= *end => {
                self.pending.remove(&partition);
                self.pending.is_empty()
            }
            _ => false,
        }
    }
}

/// Where to assign every partition of `topic` (its beginning, or with
/// `since_ms` the first offset written at or after it, else the end read
/// now), and each partition's first offset and end as of now.
fn starting_point(
    consumer: &StreamConsumer,
    topic: &str,
    since_ms: Option<i64>,
) -> Result<(TopicPartitionList, Vec<Extent>), KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), KAFKA_TIMEOUT)?;
    let mut marks = HashMap::new();
    for partition in metadata.topics().iter().flat_map(|topic| topic.partitions()) {
        marks.insert(partition.id(), consumer.fetch_watermarks(topic, partition.id(), KAFKA_TIMEOUT)?);
    }
    if marks.is_empty() {
        return Err(KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition));
    }
    let mut assignment = TopicPartitionList::new();
    let mut extents = Vec::new();
    match since_ms {
        None => {
            for (&partition, &(low, high)) in &marks {
                assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
                extents.push(Extent { partition, first: low, end: high });
            }
        }
        Some(since_ms) => {
            let mut wanted = TopicPartitionList::new();
            for &partition in marks.keys() {
                wanted.add_partition_offset(topic, partition, Offset::Offset(since_ms))?;
            }
            let found = consumer.offsets_for_times(wanted, KAFKA_TIMEOUT)?;
            for element in found.elements() {
                let (_, high) = marks.get(&element.partition()).copied().unwrap_or_default();
                // The end was read before this lookup, so a record written
                // since then lies at or after it and is not skipped.
                let first = match element.offset() {
                    Offset::Offset(offset) => offset,
                    _ => high,
                };
                assignment.add_partition_offset(topic, element.partition(), Offset::Offset(first))?;
                extents.push(Extent { partition: element.partition(), first, end: high });
            }
        }
    }
    Ok((assignment, extents))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extent(partition: i32, first: i64, end: i64) -> Extent {
        Extent { partition, first, end }
    }

    #[test]
    fn caught_up_once_every_partition_is_read_to_its_end() {
        // Partition 0 holds 0..3, partition 1 is empty, partition 2 starts at 5 of 7.
        let mut catch_up = CatchUp::new(vec![extent(0, 0, 3), extent(1, 4, 4), extent(2, 5, 7)]);
        assert!(!catch_up.done());

        assert!(!catch_up.read(0, 2), "partition 2 is still pending");
        assert!(!catch_up.read(2, 5));
        assert!(!catch_up.read(1, 4), "a partition that was empty never counts");
        assert!(catch_up.read(2, 6), "the last pending record completes the catch-up");
        assert!(!catch_up.read(2, 7), "it completes once");
    }

    #[test]
    fn a_topic_with_nothing_to_read_is_caught_up_at_once() {
        assert!(CatchUp::new(vec![extent(0, 0, 0), extent(1, 9, 9)]).done());
        assert!(CatchUp::new(Vec::new()).done());
    }

    #[test]
    fn progress_starts_neither_following_nor_caught_up() {
        let progress = Progress::default();
        assert!(!progress.following() && !progress.caught_up());
    }
}
