//! Reading what services wrote to a topic: raw records from the beginning
//! through a filter, or decoded values up to the topic's end. A reader that
//! stops at the end it measured first proves absence: a record missing from
//! its answer was not in the topic, with no quiet spell waited out. And
//! producing records in order, as a service's upstream would.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use mamochi_common::{kafka, Settings};
use mamochi_events::codec::EventCodec;
use mamochi_events::topics::Topic;
use mamochi_events::AvroSchemaSource;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use serde::de::DeserializeOwned;

use crate::offsets::end_offsets;
use crate::settings::unique;

/// Reads records of `topic` from the beginning until `filter` has accepted
/// `expected` of them or `timeout` passes, and returns those accepted.
pub async fn read_records(
    settings: &Settings,
    topic: &str,
    expected: usize,
    timeout: Duration,
    filter: impl Fn(&OwnedMessage) -> bool,
) -> Vec<OwnedMessage> {
    let consumer = kafka::consumer(&settings.kafka, &unique("reader"), "test").expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut stream = consumer.stream();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut found = Vec::new();
    while found.len() < expected {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(message))) => {
                let owned = message.detach();
                if filter(&owned) {
                    found.push(owned);
                }
            }
            Ok(Some(Err(error))) => eprintln!("consumer reported (continuing): {error}"),
            Ok(None) | Err(_) => break,
        }
    }
    found
}

/// Every record of `topic` written between `from` (a mark taken with
/// [`end_offsets`] before the act) and the topic's end now, decoded. Panics
/// if a record does not decode or the end is not reached within a minute.
pub async fn read_since<K, V>(settings: &Settings, topic: &Topic<K, V>, from: &[(i32, i64)]) -> Vec<V>
where
    V: AvroSchemaSource + DeserializeOwned,
{
    let ends = end_offsets(settings, topic);
    let mut assignment = TopicPartitionList::new();
    let mut pending: HashMap<i32, i64> = HashMap::new();
    for (partition, start) in from {
        let end = ends.iter().find(|(p, _)| p == partition).map_or(0, |(_, end)| *end);
        if end > *start {
            assignment.add_partition_offset(topic.name(), *partition, Offset::Offset(*start)).expect("offset");
            pending.insert(*partition, end);
        }
    }
    let codec = EventCodec::new(&settings.registry.url);
    read_assigned(settings, &codec, topic.name(), assignment, pending, Strict::Yes).await
}

/// Every record of `topic` from its beginning up to its end now, decoded;
/// records that do not decode as `V` are passed over.
pub async fn read_to_end<K, V>(settings: &Settings, codec: &EventCodec, topic: &Topic<K, V>) -> Vec<V>
where
    V: AvroSchemaSource + DeserializeOwned,
{
    let probe: rdkafka::consumer::BaseConsumer =
        kafka::consumer_config(&settings.kafka, "test.watermarks", "test-probe").create().expect("probe");
    let mut assignment = TopicPartitionList::new();
    let mut pending = HashMap::new();
    for partition in 0..topic.info.partitions {
        let (low, high) = probe.fetch_watermarks(topic.name(), partition, Duration::from_secs(10)).expect("watermarks");
        if high > low {
            pending.insert(partition, high);
            assignment.add_partition_offset(topic.name(), partition, Offset::Beginning).expect("assign");
        }
    }
    read_assigned(settings, codec, topic.name(), assignment, pending, Strict::No).await
}

/// Whether a record that does not decode fails the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strict {
    Yes,
    No,
}

async fn read_assigned<V>(
    settings: &Settings,
    codec: &EventCodec,
    topic: &str,
    assignment: TopicPartitionList,
    mut pending: HashMap<i32, i64>,
    strict: Strict,
) -> Vec<V>
where
    V: AvroSchemaSource + DeserializeOwned,
{
    let mut values = Vec::new();
    if pending.is_empty() {
        return values;
    }
    let consumer = kafka::consumer(&settings.kafka, &unique("reader"), "test").expect("consumer");
    consumer.assign(&assignment).expect("assign");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !pending.is_empty() {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(message)) => {
                match codec.decode::<V>(message.payload()).await {
                    Ok(value) => values.push(value),
                    Err(error) if strict == Strict::Yes => panic!("a record of {topic} does not decode: {error}"),
                    Err(_) => {}
                }
                if pending.get(&message.partition()).is_some_and(|end| message.offset() + 1 >= *end) {
                    pending.remove(&message.partition());
                }
            }
            Ok(Err(error)) => eprintln!("reader: {error}"),
            Err(_) => panic!("{topic} not read to its end within a minute: {pending:?} left"),
        }
    }
    values
}

/// Produces `values` to `topic` keyed by `key_of`, in the given order: each
/// record is handed to the (idempotent) producer before the next, so records
/// of one key keep their order in the partition; then waits for every
/// acknowledgement.
pub async fn produce_in_order<K, V>(
    producer: &rdkafka::producer::FutureProducer,
    codec: &EventCodec,
    topic: &Topic<K, V>,
    values: &[V],
    key_of: impl Fn(&V) -> K,
) where
    K: AvroSchemaSource + serde::Serialize,
    V: AvroSchemaSource + serde::Serialize,
{
    let mut encoded = Vec::with_capacity(values.len());
    for value in values {
        encoded.push(codec.encode(topic, &key_of(value), value).await.expect("record encodes"));
    }
    let mut deliveries = Vec::with_capacity(encoded.len());
    for (key, payload) in &encoded {
        loop {
            let record = rdkafka::producer::FutureRecord::to(topic.name()).key(key).payload(payload);
            match producer.send_result(record) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                Err((
                    rdkafka::error::KafkaError::MessageProduction(rdkafka::error::RDKafkaErrorCode::QueueFull),
                    _,
                )) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((error, _)) => panic!("record not enqueued: {error}"),
            }
        }
    }
    for delivery in futures::future::join_all(deliveries).await {
        delivery.expect("delivery reported").expect("record acknowledged");
    }
}
