//! A poison sale in the distributor's batch, on the real stack: a sale whose
//! effect PostgreSQL refuses for good (its cart update violates a check
//! constraint this test adds for that one vendor) fails its batch; the batch
//! is split until the poison sale is alone, that sale is parked on
//! `mamochi.dead-letters` with its reason and provenance, and the sales
//! behind it on the same partition and on another partition are applied.

mod support;

use std::time::Duration;

use chrono::Utc;
use diesel_async::RunQueryDsl;
use mamochi_common::kafka;
use mamochi_distributor::service::SALES_GROUP;
use mamochi_distributor::store::SALES_CONSUMER;
use mamochi_events::codec::EventCodec;
use mamochi_events::dead_letter::headers;
use mamochi_events::topics::{DEAD_LETTERS, SALES};
use mamochi_events::{PaymentMethod, SaleRecorded, VendorKey};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use support::{applied_count, cart, eventually, Running, SERIAL};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

fn sale(vendor_id: Uuid, quantity: i32) -> SaleRecorded {
    let now = Utc::now();
    SaleRecorded {
        sale_id: Uuid::new_v4(),
        vendor_id,
        quantity,
        unit_price_clp: 1_500,
        total_clp: i64::from(quantity) * 1_500,
        payment_method: PaymentMethod::Cash,
        occurred_at: now,
        recorded_at: now,
        location: None,
    }
}

/// Produces `sale` to `partition` of the sales topic; returns its offset.
async fn produce(
    producer: &rdkafka::producer::FutureProducer,
    codec: &EventCodec,
    partition: i32,
    sale: &SaleRecorded,
) -> i64 {
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

/// The dead letter of `mamochi.sales` offset `offset` of `partition`,
/// reading the dead-letter topic from `from`.
async fn dead_letter(settings: &mamochi_common::Settings, from: i64, partition: i32, offset: i64) -> OwnedMessage {
    let consumer =
        kafka::consumer(&settings.kafka, &format!("test.dlq.{}", Uuid::new_v4().simple()), "test").expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(DEAD_LETTERS.name, 0, Offset::Offset(from)).expect("assign");
    consumer.assign(&assignment).expect("assign");
    let header = |message: &OwnedMessage, name: &str| {
        message.headers().and_then(|all| all.iter().find(|h| h.key == name)).and_then(|h| h.value).map(<[u8]>::to_vec)
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .expect("the poison sale reaches the dead letters in time")
            .expect("no consumer error")
            .detach();
        if header(&message, headers::SOURCE_TOPIC).as_deref() == Some(SALES.name().as_bytes())
            && header(&message, headers::SOURCE_PARTITION) == Some(partition.to_string().into_bytes())
            && header(&message, headers::SOURCE_OFFSET) == Some(offset.to_string().into_bytes())
        {
            return message;
        }
    }
}

fn header(message: &OwnedMessage, name: &str) -> String {
    message
        .headers()
        .and_then(|all| all.iter().find(|h| h.key == name))
        .and_then(|h| h.value)
        .map(|value| String::from_utf8_lossy(value).into_owned())
        .unwrap_or_default()
}

/// `mamochi_kafka_dead_letters_total` for the sales topic and reason
/// `constraint_violation`.
fn parked_count(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with("mamochi_kafka_dead_letters_total{"))
        .filter(|line| line.contains("reason=\"constraint_violation\"") && line.contains("topic=\"mamochi.sales\""))
        .filter_map(|line| line.rsplit(' ').next().and_then(|value| value.parse::<f64>().ok()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_the_database_refuses_is_parked_and_the_rest_of_its_batch_applies() {
    let _serial = SERIAL.lock().await;
    // Arrange: three vendors with carts of 50; the database refuses any
    // change to the poison vendor's cart (a check constraint on that one
    // vendor, not validated against existing rows).
    let settings = support::settings();
    let pool = support::pool(&settings);
    let codec = EventCodec::new(&settings.registry.url);
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let poison_vendor = support::vendor_with_cart(&pool, 50).await;
    let same_partition = support::vendor_with_cart(&pool, 50).await;
    let other_partition = support::vendor_with_cart(&pool, 50).await;
    let constraint = format!("test_poison_{}", Uuid::new_v4().simple());
    let mut conn = pool.get().await.expect("connection");
    diesel::sql_query(format!(
        "ALTER TABLE carts ADD CONSTRAINT {constraint} CHECK (vendor_id <> '{}') NOT VALID",
        poison_vendor.id
    ))
    .execute(&mut conn)
    .await
    .expect("constraint added");
    let watermarks = kafka::consumer(&settings.kafka, "test.dlq.watermarks", "test").expect("consumer");
    let (_, dead_letters_from) =
        watermarks.fetch_watermarks(DEAD_LETTERS.name, 0, Duration::from_secs(10)).expect("watermarks");
    // Written before the distributor starts, so they arrive as one batch:
    // the poison sale first, a good sale behind it on the same partition,
    // one on another partition, then one more behind on the same partition.
    let poison = sale(poison_vendor.id, 2);
    let behind = [sale(same_partition.id, 3), sale(same_partition.id, 4)];
    let elsewhere = sale(other_partition.id, 5);
    let poison_offset = produce(&producer, &codec, 0, &poison).await;
    produce(&producer, &codec, 0, &behind[0]).await;
    produce(&producer, &codec, 1, &elsewhere).await;
    produce(&producer, &codec, 0, &behind[1]).await;

    // Act
    let running = Running::start(&settings).await;
    let parked = dead_letter(&settings, dead_letters_from, 0, poison_offset).await;
    eventually(WAIT, "the good sales applied", || async {
        let done = cart(&pool, same_partition.id).await.is_some_and(|(stock, _, _)| stock == 50 - 3 - 4)
            && cart(&pool, other_partition.id).await.is_some_and(|(stock, _, _)| stock == 50 - 5);
        done.then_some(())
    })
    .await;
    // The dead letter is visible to readers a moment before the service's
    // producer hears it acknowledged and counts it: wait for the count.
    let metrics = eventually(WAIT, "the parked sale counted", || async {
        let (_, metrics) = support::get(running.ops_port, "/metrics").await;
        (parked_count(&metrics) >= 1.0).then_some(metrics)
    })
    .await;
    running.stop().await;
    diesel::sql_query(format!("ALTER TABLE carts DROP CONSTRAINT {constraint}"))
        .execute(&mut conn)
        .await
        .expect("constraint dropped");

    // Assert
    assert_eq!(header(&parked, headers::REASON), "constraint_violation");
    assert!(header(&parked, headers::ERROR).contains(&constraint), "the error names the constraint");
    assert_eq!(header(&parked, headers::CONSUMER_GROUP), SALES_GROUP);
    let parked_sale = codec.decode::<SaleRecorded>(parked.payload()).await.expect("the parked bytes are the sale");
    assert_eq!(parked_sale.sale_id, poison.sale_id);
    assert_eq!(
        cart(&pool, poison_vendor.id).await.map(|(stock, _, _)| stock),
        Some(50),
        "the poison sale changed nothing"
    );
    let good: Vec<Uuid> = behind.iter().chain([&elsewhere]).map(|sale| sale.sale_id).collect();
    assert_eq!(applied_count(&pool, SALES_CONSUMER, &good).await, 3, "every good sale applied once");
    assert_eq!(applied_count(&pool, SALES_CONSUMER, &[poison.sale_id]).await, 0, "the poison sale left no dedupe row");
    assert_eq!(parked_count(&metrics), 1.0, "the parked sale is counted once");
}
