//! Which registry instance is the writer: every instance joins one Kafka
//! consumer group subscribed to a one-partition *election topic*, and the
//! member the group assigns partition 0 is the writer — the way Confluent's
//! registry elects its leader with Kafka's group protocol.
//!
//! Guarantees:
//! - **At most one holder**: the group coordinator assigns partition 0 to one
//!   member per generation. [`Membership`] reports a gain right after the
//!   assignment and a loss *before* the revocation completes (pre-rebalance),
//!   and a member whose session expired learns it when it rejoins. A paused
//!   process can still believe it holds the partition for a while: the
//!   transactional producer in [`crate::kafka_store`] fences it, so it can never
//!   append after another instance took over.
//! - **Prompt hand-over**: the group uses the `cooperative-sticky` assignor, so
//!   an instance joining does not move partition 0 away from the writer; an
//!   instance that stops leaves the group on close and another gets the
//!   partition in one rebalance; one that dies is replaced after the session
//!   timeout (10 s).
//! - **The writer is announced**: the writer commits an [`Announcement`] (its
//!   URL) to the election topic in a transaction of the fenced producer, so the
//!   latest committed announcement in the topic names the current writer, and
//!   every instance's log reader follows it to forward writes there.
//!
//! The names (group, topic, transactional id) derive from the registry's state
//! topic, here and only here, so registries on different state topics never
//! meet in an election.

use std::time::Duration;

use mamochi_common::kafka;
use mamochi_common::Settings;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::TopicPartitionList;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The group every instance of one registry joins (after the group prefix).
const WRITER_GROUP: &str = "mamochi-registry-writer";
/// Key of every announcement: compaction keeps only the latest one.
pub const ANNOUNCEMENT_KEY: &[u8] = b"writer";

/// Names of one registry's election, derived from its state topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionNames {
    /// The consumer group whose partition-0 holder is the writer.
    pub group: String,
    /// The one-partition compacted topic the group subscribes to, which also
    /// holds the writer's announcements.
    pub topic: String,
    /// The writer's `transactional.id`: one per registry, so a new writer's
    /// `init_transactions` fences the previous one.
    pub transactional_id: String,
}

impl ElectionNames {
    pub fn new(settings: &Settings) -> Self {
        let state_topic = &settings.registry.topic;
        Self {
            group: settings.kafka.group(&format!("{WRITER_GROUP}-{state_topic}")),
            topic: format!("{state_topic}-writer"),
            transactional_id: format!("{WRITER_GROUP}-{state_topic}"),
        }
    }
}

/// What the writer commits to the election topic when it takes office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// Base URL other instances forward writes to.
    pub url: String,
    /// Unique per term, so a log reader can tell two terms of one instance apart.
    pub term: String,
}

impl Announcement {
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Reports gains and losses of partition 0 of the election topic.
struct ElectionContext {
    topic: String,
    holds: watch::Sender<bool>,
}

impl ElectionContext {
    fn names_partition(&self, partitions: &TopicPartitionList) -> bool {
        partitions.elements().iter().any(|element| element.topic() == self.topic && element.partition() == 0)
    }
}

impl ClientContext for ElectionContext {}

impl ConsumerContext for ElectionContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // A loss is reported before the partition is released, so this instance
        // stops taking writes as early as it can; a write already under way
        // when a successor takes office is stopped by fencing, not by this.
        if let Rebalance::Revoke(partitions) = rebalance {
            if self.names_partition(partitions) {
                tracing::info!(topic = %self.topic, "lost the registry writer's partition");
                self.holds.send_replace(false);
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            if self.names_partition(partitions) {
                tracing::info!(topic = %self.topic, "assigned the registry writer's partition");
                self.holds.send_replace(true);
            }
        }
    }
}

/// This instance's membership in the election group.
#[derive(Debug)]
pub struct Membership {
    /// True while the group has assigned this instance partition 0.
    pub holds: watch::Receiver<bool>,
    /// Polls the group consumer until `stop`, then leaves the group.
    pub task: JoinHandle<()>,
}

impl Membership {
    /// Joins the group; the election topic must exist.
    pub fn join(settings: &Settings, names: &ElectionNames, stop: CancellationToken) -> anyhow::Result<Self> {
        let (holds_tx, holds) = watch::channel(false);
        let mut config = kafka::consumer_config(&settings.kafka, &names.group, "registry-election");
        config
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("enable.auto.commit", "false")
            // The member only needs to hold the partition; the announcements it
            // would read are followed by the log reader instead.
            .set("auto.offset.reset", "latest");
        let consumer: StreamConsumer<ElectionContext> =
            config.create_with_context(ElectionContext { topic: names.topic.clone(), holds: holds_tx })?;
        consumer.subscribe(&[&names.topic])?;
        let task = tokio::spawn(stay_member(consumer, stop));
        Ok(Self { holds, task })
    }
}

/// Polls continuously, which keeps the membership alive and runs the
/// rebalance callbacks; on `stop`, closes the consumer so the group moves the
/// partition to another instance at once instead of after the session timeout.
async fn stay_member(consumer: StreamConsumer<ElectionContext>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            received = consumer.recv() => {
                if let Err(error) = received {
                    tracing::warn!(%error, "error in the registry writer election");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    // Closing blocks while the group is told and the revocation runs.
    if tokio::task::spawn_blocking(move || drop(consumer)).await.is_err() {
        tracing::warn!("leaving the registry writer election panicked");
    }
    tracing::debug!("left the registry writer election");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_round_trip() {
        let announcement = Announcement { url: "http://127.0.0.1:8081".into(), term: "t".into() };
        let bytes = announcement.encode().expect("encodes");
        assert_eq!(Announcement::decode(&bytes).expect("decodes"), announcement);
    }
}
