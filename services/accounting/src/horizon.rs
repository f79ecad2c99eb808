//! The close horizon: the latest instant up to which accounting has seen
//! every sale, over every partition of `mamochi.sales` and every instance of
//! the consumer group. A week may close only once its end plus the grace
//! period is at or before the horizon ([`crate::closer`]).
//!
//! Each partition either holds the horizon back or does not:
//! - a partition with nothing left to read does not: the group's position on
//!   it (the later of its committed offset, the offset after the last sale
//!   applied from it, and the partition's first offset) has reached its high
//!   watermark. So an idle partition never blocks closing;
//! - any other partition holds it at the latest sale time applied from it
//!   (`accounting_watermarks`, moved in the same transaction as the sales,
//!   [`crate::store::apply_sales_read_by`]), or holds everything if none was.
//!
//! The horizon is the earliest instant any partition holds it at, and never
//! later than platform time now.
//!
//! Why a shared view, and why any instance may close (no elected closer):
//! the watermarks live in PostgreSQL and the positions are the group's own
//! committed offsets in Kafka, so every instance of the group computes the
//! same horizon, whichever partitions it is assigned (a rebalance changes
//! nothing). Closing a week ([`crate::store::close_week`]) is idempotent
//! under the week row's lock and a statement is published by whoever takes
//! its row first ([`crate::publisher`]), so two instances closing at once
//! still give one statement and one email request per vendor and week. An
//! election would add a failure mode (a dead leader) and buy nothing.
//!
//! Guarantee: when a week closes, every sale of that week already in any
//! sales partition at that moment, and not further behind its partition's
//! latest applied sale than the grace period, is in its statement: an offset
//! is committed and a watermark written only after the sale's effect
//! committed. Limits: a sale that reaches Kafka after its week closed, or
//! that arrives on its partition more than the grace period after a later
//! sale, is late (crate doc). Deleting and re-creating the sales topic needs
//! the group's rows in `accounting_watermarks` deleted too (offsets restart).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mamochi_common::config::KafkaSettings;
use mamochi_common::kafka;
use mamochi_events::topics;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::store::StoredWatermark;

/// How long one Kafka look-up may take before the pass gives up.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the group's positions could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HorizonError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("topic {0} has no partitions in the cluster metadata")]
    NoPartitions(&'static str),
    #[error("the look-up task failed: {0}")]
    Task(String),
}

/// One sales partition as the horizon sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionView {
    pub partition: i32,
    /// First offset still in the log.
    pub low: i64,
    /// Offset the next record written will get.
    pub high: i64,
    /// The group's committed offset, if it has one.
    pub committed: Option<i64>,
    /// What the group recorded in PostgreSQL, if anything.
    pub stored: Option<StoredWatermark>,
}

impl PartitionView {
    /// Where the group's next read of this partition starts, at least.
    pub fn position(&self) -> i64 {
        let stored = self.stored.map(|stored| stored.next_offset);
        [Some(self.low), self.committed, stored].into_iter().flatten().max().unwrap_or(self.low)
    }

    /// Whether every record in the partition has been handled.
    pub fn drained(&self) -> bool {
        self.position() >= self.high
    }

    /// `None` if this partition does not hold the horizon back; `Some(None)`
    /// if it holds everything (records to read, no sale applied yet);
    /// `Some(Some(t))` if it holds the horizon at `t`.
    fn holds(&self) -> Option<Option<DateTime<Utc>>> {
        if self.drained() {
            None
        } else {
            Some(self.stored.map(|stored| stored.event_time))
        }
    }
}

/// The instant up to which weeks may close: `None` if some partition has
/// records to read and no sale applied from it yet (nothing may close).
pub fn horizon(platform_now: DateTime<Utc>, partitions: &[PartitionView]) -> Option<DateTime<Utc>> {
    let mut horizon = platform_now;
    for partition in partitions {
        match partition.holds() {
            None => {}
            Some(None) => return None,
            Some(Some(at)) => horizon = horizon.min(at),
        }
    }
    Some(horizon)
}

/// Reads the group's positions on the sales topic from Kafka.
#[derive(Clone)]
pub struct GroupPositions {
    /// Consumer-group name (with the configured prefix).
    pub group: String,
    /// Never subscribes, so it never joins the group: it only asks the
    /// group's coordinator for committed offsets and the brokers for
    /// watermarks.
    consumer: Arc<BaseConsumer>,
}

impl std::fmt::Debug for GroupPositions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupPositions").field("group", &self.group).finish_non_exhaustive()
    }
}

impl GroupPositions {
    pub fn new(settings: &KafkaSettings, group: &str) -> Result<Self, KafkaError> {
        let consumer: BaseConsumer = kafka::consumer_config(settings, group, "accounting-horizon").create()?;
        Ok(Self { group: group.to_string(), consumer: Arc::new(consumer) })
    }

    /// Every sales partition with its offsets and what `stored` says of it.
    pub async fn read(&self, stored: &[StoredWatermark]) -> Result<Vec<PartitionView>, HorizonError> {
        let consumer = self.consumer.clone();
        let stored = stored.to_vec();
        // librdkafka's look-ups block; they run off the async workers.
        tokio::task::spawn_blocking(move || read_blocking(&consumer, &stored))
            .await
            .map_err(|error| HorizonError::Task(error.to_string()))?
    }
}

fn read_blocking(consumer: &BaseConsumer, stored: &[StoredWatermark]) -> Result<Vec<PartitionView>, HorizonError> {
    // Serve what librdkafka queued for this client since the last pass (logs,
    // errors): it never subscribes, so nothing else polls it.
    let _ = consumer.poll(Duration::ZERO);
    let topic = topics::SALES.name();
    let metadata = consumer.fetch_metadata(Some(topic), KAFKA_TIMEOUT)?;
    let ids: Vec<i32> =
        metadata.topics().iter().flat_map(|found| found.partitions()).map(|partition| partition.id()).collect();
    if ids.is_empty() {
        return Err(HorizonError::NoPartitions(topic));
    }
    // Watermarks before committed offsets: a record written in between then
    // only makes a partition look busier than it is, never drained too soon.
    let mut offsets = Vec::with_capacity(ids.len());
    let mut list = TopicPartitionList::new();
    for id in &ids {
        offsets.push(consumer.fetch_watermarks(topic, *id, KAFKA_TIMEOUT)?);
        list.add_partition(topic, *id);
    }
    let committed = consumer.committed_offsets(list, KAFKA_TIMEOUT)?;
    Ok(ids
        .iter()
        .zip(offsets)
        .map(|(id, (low, high))| PartitionView {
            partition: *id,
            low,
            high,
            committed: committed.find_partition(topic, *id).and_then(|element| match element.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            }),
            stored: stored.iter().find(|row| row.partition == *id).copied(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 3, 0, 0).single().expect("instant") + Duration::hours(hours)
    }

    fn view(partition: i32, high: i64, committed: Option<i64>, stored: Option<(i64, i64)>) -> PartitionView {
        PartitionView {
            partition,
            low: 0,
            high,
            committed,
            stored: stored.map(|(hours, next_offset)| StoredWatermark {
                partition,
                event_time: at(hours),
                next_offset,
            }),
        }
    }

    #[test]
    fn drained_partitions_leave_the_horizon_at_platform_time() {
        let partitions =
            [view(0, 10, Some(10), Some((-5, 10))), view(1, 0, None, None), view(2, 7, None, Some((1, 7)))];
        assert_eq!(horizon(at(3), &partitions), Some(at(3)));
    }

    #[test]
    fn a_partition_with_a_backlog_holds_the_horizon_at_its_latest_applied_sale() {
        let partitions =
            [view(0, 10, Some(10), None), view(1, 500, Some(200), Some((-2, 240))), view(2, 9, Some(3), Some((1, 3)))];
        assert_eq!(horizon(at(3), &partitions), Some(at(-2)));
    }

    #[test]
    fn a_partition_with_a_backlog_and_nothing_applied_holds_everything() {
        let partitions = [view(0, 10, Some(10), Some((5, 10))), view(1, 4, Some(1), None)];
        assert_eq!(horizon(at(3), &partitions), None);
    }

    #[test]
    fn the_later_of_committed_and_stored_offsets_counts_and_an_emptied_log_is_drained() {
        // Committed lags the stored offset (auto-commit not yet run): drained.
        assert!(view(0, 10, Some(8), Some((0, 10))).drained());
        // Stored lags committed (the last records were parked): drained.
        assert!(view(0, 10, Some(10), Some((0, 8))).drained());
        assert!(!view(0, 10, Some(9), Some((0, 9))).drained());
        // Retention deleted everything the group never read.
        let emptied = PartitionView { low: 10, ..view(0, 10, None, None) };
        assert!(emptied.drained());
    }

    #[test]
    fn the_horizon_never_passes_platform_time() {
        let partitions = [view(0, 10, Some(3), Some((50, 3)))];
        assert_eq!(horizon(at(3), &partitions), Some(at(3)));
    }
}
