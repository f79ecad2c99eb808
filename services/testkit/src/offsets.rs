//! Where consumer groups and topics stand: partitions' end offsets, a
//! group's committed offsets, waits until a group has committed past a mark,
//! rewinds, and a group's members. Tests use them as the positive signal
//! that a service has processed everything up to a point, instead of a
//! fixed sleep.

use std::time::Duration;

use mamochi_common::{kafka, Settings};
use mamochi_events::topics::{Topic, TopicInfo};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// A topic named either way the catalog does: typed ([`Topic`]) or not
/// ([`TopicInfo`], the dead letters').
pub trait AnyTopic {
    fn info(&self) -> &TopicInfo;
}

impl AnyTopic for TopicInfo {
    fn info(&self) -> &TopicInfo {
        self
    }
}

impl<K, V> AnyTopic for Topic<K, V> {
    fn info(&self) -> &TopicInfo {
        &self.info
    }
}

/// How long one broker query may take.
const QUERY: Duration = Duration::from_secs(10);

/// A client of `group` that only reads or commits its offsets; it never
/// joins the group.
fn probe(settings: &Settings, group: &str) -> BaseConsumer {
    kafka::consumer_config(&settings.kafka, group, "test-probe").create().expect("probe consumer")
}

/// Each partition's end offset of `topic` now: where a later read or wait
/// starts or stops.
pub fn end_offsets(settings: &Settings, topic: &impl AnyTopic) -> Vec<(i32, i64)> {
    let probe = probe(settings, "test.watermarks");
    (0..topic.info().partitions)
        .map(|partition| {
            let (_, high) = probe.fetch_watermarks(topic.info().name, partition, QUERY).expect("watermarks");
            (partition, high)
        })
        .collect()
}

/// `group`'s committed offset on each partition of `topic` that has one.
pub fn committed(settings: &Settings, group: &str, topic: &impl AnyTopic) -> Vec<(i32, i64)> {
    let mut list = TopicPartitionList::new();
    for partition in 0..topic.info().partitions {
        list.add_partition(topic.info().name, partition);
    }
    let committed = probe(settings, group).committed_offsets(list, QUERY).expect("committed offsets");
    committed
        .elements()
        .iter()
        .filter_map(|element| match element.offset() {
            Offset::Offset(offset) => Some((element.partition(), offset)),
            _ => None,
        })
        .collect()
}

/// `group`'s committed offset on one partition (-1 for none).
pub fn committed_on(settings: &Settings, group: &str, topic: &impl AnyTopic, partition: i32) -> i64 {
    committed(settings, group, topic).into_iter().find(|(p, _)| *p == partition).map_or(-1, |(_, offset)| offset)
}

/// The partitions of `ends` on which `group` has not committed up to the
/// given offset yet.
pub fn behind(settings: &Settings, group: &str, topic: &impl AnyTopic, ends: &[(i32, i64)]) -> Vec<(i32, i64)> {
    let committed = committed(settings, group, topic);
    ends.iter()
        .filter(|(partition, end)| {
            committed.iter().find(|(p, _)| p == partition).map_or(*end > 0, |(_, offset)| offset < end)
        })
        .copied()
        .collect()
}

/// Waits until `group` has committed, on every partition of `ends`, an
/// offset at or past the given one; panics after `timeout`, naming the
/// partitions still behind.
pub async fn wait_until_committed(
    settings: &Settings,
    group: &str,
    topic: &impl AnyTopic,
    ends: &[(i32, i64)],
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let behind = behind(settings, group, topic, ends);
        if behind.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{group} did not commit past {behind:?} on {} in time: {:?}",
            topic.info().name,
            committed(settings, group, topic)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether `group` has committed every non-empty partition of `topic` to
/// its end.
pub fn caught_up(settings: &Settings, group: &str, topic: &impl AnyTopic) -> bool {
    let probe = probe(settings, group);
    let committed = committed(settings, group, topic);
    (0..topic.info().partitions).all(|partition| {
        let (low, high) = probe.fetch_watermarks(topic.info().name, partition, QUERY).expect("watermarks");
        high == low || committed.iter().any(|(p, offset)| *p == partition && *offset >= high)
    })
}

/// Commits `offsets` for `group`, as if every commit made after them had
/// been lost in a crash: the next consumer re-reads from there. Only valid
/// while no member of the group is running.
pub fn rewind(settings: &Settings, group: &str, topic: &impl AnyTopic, offsets: &[(i32, i64)]) {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(topic.info().name, *partition, Offset::Offset(*offset)).expect("partition offset");
    }
    probe(settings, group).commit(&list, CommitMode::Sync).expect("commit rewound offsets");
}

/// Member ids of `group` now (a member the group evicted comes back under
/// a new id).
pub fn group_members(settings: &Settings, group: &str) -> Vec<String> {
    let list = probe(settings, group).fetch_group_list(Some(group), QUERY).expect("group list");
    list.groups().iter().flat_map(|group| group.members()).map(|member| member.id().to_string()).collect()
}
