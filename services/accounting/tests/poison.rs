//! Poison sales in accounting's batch, on the real stack: one whose effect
//! PostgreSQL refuses for good (its week row violates a check constraint
//! this test adds for that one vendor) and one that is invalid (its total is
//! not quantity × price). Both are parked on `mamochi.dead-letters` with
//! their reason and provenance; the sales behind them on the same partition
//! and on another partition are counted, each once.

mod support;

use std::time::Duration;

use chrono::Utc;
use diesel_async::RunQueryDsl;
use mamochi_common::kafka;
use mamochi_events::codec::EventCodec;
use mamochi_events::dead_letter::headers;
use mamochi_events::topics::{DEAD_LETTERS, SALES};
use mamochi_events::{SaleRecorded, VendorKey};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

/// Produces `sale` to `partition` of the sales topic; returns its offset.
async fn produce(producer: &FutureProducer, codec: &EventCodec, partition: i32, sale: &SaleRecorded) -> i64 {
    let (key, value) = codec.encode(&SALES, &VendorKey { vendor_id: sale.vendor_id }, sale).await.expect("encodes");
    let record = FutureRecord::to(SALES.name()).partition(partition).key(&key).payload(&value);
    let delivery = producer
        .send(record, Timeout::After(Duration::from_secs(30)))
        .await
        .map_err(|(error, _)| error)
        .expect("sale acknowledged");
    assert_eq!(delivery.partition, partition);
    delivery.offset
}

fn header(message: &OwnedMessage, name: &str) -> String {
    message
        .headers()
        .and_then(|all| all.iter().find(|h| h.key == name))
        .and_then(|h| h.value)
        .map(|value| String::from_utf8_lossy(value).into_owned())
        .unwrap_or_default()
}

/// The dead letters of the sales at `partition`/`offsets`, reading the
/// dead-letter topic from `from`; in the order they were parked.
async fn dead_letters(
    settings: &mamochi_common::Settings,
    from: i64,
    partition: i32,
    offsets: &[i64],
) -> Vec<OwnedMessage> {
    let consumer =
        kafka::consumer(&settings.kafka, &format!("test.dlq.{}", Uuid::new_v4().simple()), "test").expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(DEAD_LETTERS.name, 0, Offset::Offset(from)).expect("assign");
    consumer.assign(&assignment).expect("assign");
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut found = Vec::new();
    while found.len() < offsets.len() {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .expect("the poison sales reach the dead letters in time")
            .expect("no consumer error")
            .detach();
        let ours = header(&message, headers::SOURCE_TOPIC) == SALES.name()
            && header(&message, headers::SOURCE_PARTITION) == partition.to_string()
            && offsets.iter().any(|offset| header(&message, headers::SOURCE_OFFSET) == offset.to_string());
        if ours {
            found.push(message);
        }
    }
    found
}

/// `mamochi_kafka_dead_letters_total` for the sales topic and `reason`.
fn parked_count(metrics: &str, reason: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with("mamochi_kafka_dead_letters_total{"))
        .filter(|line| line.contains(&format!("reason=\"{reason}\"")) && line.contains("topic=\"mamochi.sales\""))
        .filter_map(|line| line.rsplit(' ').next().and_then(|value| value.parse::<f64>().ok()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_that_can_never_count_are_parked_and_the_rest_of_the_batch_counts() {
    let _serial = support::serial().await;
    // Arrange: this test's own consumer group, at the end of the sales; the
    // database refuses any week row of the poison vendor.
    let mut settings = support::settings(Utc::now(), 1.0, 3_600);
    settings.kafka.group_prefix = format!("test-{}-", Uuid::new_v4().simple());
    kafka::start_group_at_end(&settings.kafka, &settings.kafka.group(mamochi_accounting::GROUP), SALES.name())
        .expect("group starts at the end");
    let pool = support::pool(&settings);
    let codec = EventCodec::new(&settings.registry.url);
    let producer = kafka::producer(&settings.kafka, "accounting-test").expect("producer");
    let (poison_vendor, same_partition, other_partition) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let constraint = format!("test_poison_{}", Uuid::new_v4().simple());
    let mut conn = pool.get().await.expect("connection");
    diesel::sql_query(format!(
        "ALTER TABLE weekly_sales ADD CONSTRAINT {constraint} CHECK (vendor_id <> '{poison_vendor}') NOT VALID"
    ))
    .execute(&mut conn)
    .await
    .expect("constraint added");
    let watermarks = kafka::consumer(&settings.kafka, "test.dlq.watermarks", "test").expect("consumer");
    let (_, dead_letters_from) =
        watermarks.fetch_watermarks(DEAD_LETTERS.name, 0, Duration::from_secs(10)).expect("watermarks");
    let now = Utc::now();
    let refused = support::sale(poison_vendor, now, 1, 1_500);
    let mut invalid = support::sale(same_partition, now, 2, 1_500);
    invalid.total_clp += 1;
    let behind = [support::sale(same_partition, now, 1, 1_500), support::sale(same_partition, now, 3, 1_500)];
    let elsewhere = support::sale(other_partition, now, 2, 2_000);
    // Written before the service starts, so they arrive as one batch.
    let refused_offset = produce(&producer, &codec, 2, &refused).await;
    produce(&producer, &codec, 2, &behind[0]).await;
    let invalid_offset = produce(&producer, &codec, 2, &invalid).await;
    produce(&producer, &codec, 3, &elsewhere).await;
    produce(&producer, &codec, 2, &behind[1]).await;

    // Act
    let service = support::start(&settings);
    let parked = dead_letters(&settings, dead_letters_from, 2, &[refused_offset, invalid_offset]).await;
    support::eventually(WAIT, "the good sales counted", || async {
        let counted = support::total_sales(&pool, &[same_partition, other_partition]).await;
        (counted == 3).then_some(())
    })
    .await;
    // The dead letter is visible to readers a moment before the service's
    // producer hears it acknowledged and counts it: wait for the count.
    let metrics = support::eventually(WAIT, "the parked sales counted", || async {
        let metrics = service.metrics().await;
        (parked_count(&metrics, "constraint_violation") >= 1.0 && parked_count(&metrics, "invalid_data") >= 1.0)
            .then_some(metrics)
    })
    .await;
    service.stop().await;
    diesel::sql_query(format!("ALTER TABLE weekly_sales DROP CONSTRAINT {constraint}"))
        .execute(&mut conn)
        .await
        .expect("constraint dropped");

    // Assert
    let reason_of = |offset: i64| {
        parked
            .iter()
            .find(|message| header(message, headers::SOURCE_OFFSET) == offset.to_string())
            .map(|message| (header(message, headers::REASON), header(message, headers::ERROR)))
            .unwrap_or_default()
    };
    let (reason, error) = reason_of(refused_offset);
    assert_eq!(reason, "constraint_violation");
    assert!(error.contains(&constraint), "the error names the constraint: {error}");
    assert_eq!(reason_of(invalid_offset).0, "invalid_data");
    assert!(parked.iter().all(|m| header(m, headers::CONSUMER_GROUP) == mamochi_accounting::GROUP));
    assert_eq!(support::total_sales(&pool, &[poison_vendor]).await, 0, "the refused sale counted nowhere");
    assert_eq!(support::total_sales(&pool, &[same_partition]).await, 2, "both sales behind it counted once");
    assert_eq!(support::total_sales(&pool, &[other_partition]).await, 1);
    assert_eq!(parked_count(&metrics, "constraint_violation"), 1.0);
    assert_eq!(parked_count(&metrics, "invalid_data"), 1.0);
}
