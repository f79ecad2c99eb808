//! Delivery guarantees of the platform's Kafka clients, on the real broker:
//! records produced by the idempotent `acks=all` producer are consumed by a
//! consumer group that stores offsets only after processing; a consumer that
//! stops and restarts neither re-reads nor skips anything.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use mamochi_common::kafka::{self, TopicSpec};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use support::Until;

async fn produce(producer: &FutureProducer, topic: &str, values: std::ops::Range<u64>) {
    let deliveries = values.map(|value| {
        let key = format!("vendor-{}", value % 7);
        let payload = value.to_string();
        async move {
            producer
                .send(FutureRecord::to(topic).key(&key).payload(&payload), Timeout::After(Duration::from_secs(30)))
                .await
                .map_err(|(error, _)| error)
                .expect("record acknowledged")
        }
    });
    futures::future::join_all(deliveries).await;
}

#[tokio::test]
async fn a_restarted_consumer_resumes_exactly_after_the_last_processed_record() {
    // Arrange: a three-partition topic holding 300 records.
    let settings = support::settings();
    let topic = support::unique("delivery");
    let admin = kafka::admin(&settings.kafka).expect("admin");
    let spec = TopicSpec { name: &topic, partitions: 3, replication: None, config: vec![] };
    kafka::ensure_topics(&admin, &[spec]).await.expect("topic created");
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let metadata = producer.client().fetch_metadata(Some(&topic), Duration::from_secs(10)).expect("metadata");
    assert_eq!(metadata.topics()[0].partitions().len(), 3);
    produce(&producer, &topic, 0..300).await;
    let group = support::unique("group");

    // Act: the first consumer processes 120 records and stops; 100 more
    // arrive while it is away; a second consumer in the same group resumes.
    let first = support::consume_values(&settings, &group, &topic, Until::Count(120), Duration::from_secs(60)).await;
    produce(&producer, &topic, 300..400).await;
    let second = support::consume_values(&settings, &group, &topic, Until::End, Duration::from_secs(60)).await;

    // Assert: together they saw every record exactly once.
    assert_eq!(first.len(), 120, "the first consumer stopped after 120 records");
    assert_eq!(second.len(), 280, "the second consumer read exactly the remaining records, nothing again");
    let seen: BTreeSet<u64> = first.iter().chain(second.iter()).copied().collect();
    assert_eq!(seen.len(), 400, "no record was read twice");
    assert_eq!(seen, (0..400).collect::<BTreeSet<u64>>(), "no record was lost");
}

#[tokio::test]
async fn ensure_topics_is_idempotent() {
    let settings = support::settings();
    let topic = support::unique("idempotent-create");
    let admin = kafka::admin(&settings.kafka).expect("admin");
    let spec = || TopicSpec {
        name: &topic,
        partitions: 2,
        replication: None,
        config: vec![("retention.ms", "3600000".to_string())],
    };

    kafka::ensure_topics(&admin, &[spec()]).await.expect("first creation");
    let again = kafka::ensure_topics(&admin, &[spec()]).await;

    assert!(again.is_ok(), "creating an existing topic is not an error: {again:?}");
}
