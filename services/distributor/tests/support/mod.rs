//! Helpers for the distributor's tests on the real stack: settings, a running
//! distributor, member fixtures in SQL, producing events and reading topics
//! to their end.
#![allow(dead_code)]

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db::{self, PgPool};
use mamochi_common::kafka;
use mamochi_common::schema::{carts, members, registrations};
use mamochi_common::shutdown::Shutdown;
use mamochi_common::Settings;
use mamochi_distributor::Distributor;
use mamochi_events::codec::EventCodec;
use mamochi_events::topics::Topic;
use mamochi_events::AvroSchemaSource;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// Tests share one database and one set of topics and consumer groups; each
/// takes this lock so exactly one distributor runs at a time and what a test
/// observes is its own instance's doing.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn settings() -> Settings {
    let mut settings = Settings::load(None).expect("settings load from the environment");
    // Warnings (retries, oversold sales) on stderr; RUST_LOG shows more.
    settings.log.filter = "warn,librdkafka=error,rdkafka=error".to_string();
    static LOGS: std::sync::Once = std::sync::Once::new();
    LOGS.call_once(|| mamochi_common::telemetry::init(&settings.log));
    settings.distributor.ops_listen = "127.0.0.1:0".to_string();
    // Consumer groups of this test process only, starting at the current end
    // of their topics: what earlier tests (other crates' too) left there is
    // not this test's business. One prefix per process, so the tests of this
    // file share their groups as one long-running service would.
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        let prefix = format!("test-{}-", Uuid::new_v4().simple());
        let mut kafka_settings = settings.kafka.clone();
        kafka_settings.group_prefix = prefix.clone();
        kafka::start_group_at_end(
            &kafka_settings,
            &kafka_settings.group(mamochi_distributor::service::SALES_GROUP),
            mamochi_events::topics::SALES.name(),
        )
        .expect("group starts at the end");
        kafka::start_group_at_end(
            &kafka_settings,
            &kafka_settings.group(mamochi_distributor::service::STOCK_GROUP),
            mamochi_events::topics::STOCK.name(),
        )
        .expect("group starts at the end");
        prefix
    });
    settings.kafka.group_prefix = prefix.clone();
    settings
}

/// A distributor running in this process until the returned token is cancelled.
pub struct Running {
    pub shutdown: Shutdown,
    pub ops_port: u16,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub async fn start(settings: &Settings) -> Self {
        let service = Distributor::build(settings).await.expect("distributor builds");
        let ops_port = service.ops_port();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(service.run_until_stopped(shutdown.clone()));
        Self { shutdown, ops_port, task }
    }

    /// Cancels and waits: the service must stop cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("stops in time")
            .expect("task joins")
            .expect("run returns Ok");
    }
}

/// A member (and its approved registration) with a cart of `stock` servings.
#[derive(Debug, Clone)]
pub struct Vendor {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
}

pub async fn vendor_with_cart(pool: &PgPool, stock: i32) -> Vendor {
    let mut conn = pool.get().await.expect("connection");
    let id = Uuid::new_v4();
    let registration_id = Uuid::new_v4();
    let tag = id.simple().to_string();
    let email = format!("vendor-{tag}@test.mamochi.cl");
    let full_name = format!("Vendedora {}", &tag[..8]);
    let rut = format!("{}-{}", &tag[..12], &tag[12..13]);
    diesel::insert_into(registrations::table)
        .values((
            registrations::registration_id.eq(registration_id),
            registrations::full_name.eq(&full_name),
            registrations::rut.eq(&rut),
            registrations::email.eq(&email),
            registrations::phone.eq("+56911111111"),
            registrations::comuna.eq("Santiago"),
            registrations::cart_plate.eq("BCDF12"),
            registrations::paid.eq(false),
            registrations::tracking_token_sha256.eq(&tag),
            registrations::status.eq("approved"),
            registrations::member_id.eq(id),
            registrations::submitted_at.eq(chrono::Utc::now()),
        ))
        .execute(&mut conn)
        .await
        .expect("registration fixture");
    diesel::insert_into(members::table)
        .values((
            members::member_id.eq(id),
            members::registration_id.eq(registration_id),
            members::full_name.eq(&full_name),
            members::rut.eq(&rut),
            members::email.eq(&email),
            members::phone.eq("+56911111111"),
            members::comuna.eq("Santiago"),
            members::cart_plate.eq("BCDF12"),
            members::paid.eq(false),
            members::api_key_id.eq(format!("test_{tag}")),
            members::api_key_sha256.eq(&tag),
        ))
        .execute(&mut conn)
        .await
        .expect("member fixture");
    if stock >= 0 {
        diesel::insert_into(carts::table)
            .values((carts::vendor_id.eq(id), carts::stock.eq(stock)))
            .execute(&mut conn)
            .await
            .expect("cart fixture");
    }
    Vendor { id, email, full_name }
}

/// The cart row: (stock, low_stock_alerted, restocks).
pub async fn cart(pool: &PgPool, vendor_id: Uuid) -> Option<(i32, bool, i32)> {
    let mut conn = pool.get().await.expect("connection");
    carts::table
        .find(vendor_id)
        .select((carts::stock, carts::low_stock_alerted, carts::restocks))
        .first(&mut conn)
        .await
        .optional()
        .expect("cart query")
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[derive(QueryableByName)]
struct Pending {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
}

/// Waits until the relay has produced every committed outbox row, so that
/// what a test then reads from Kafka is all the distributor derived: the
/// commit a test sees in PostgreSQL precedes the relay's produce.
pub async fn all_relayed(pool: &PgPool) {
    eventually(Duration::from_secs(90), "the outbox to be relayed", || async {
        let mut conn = pool.get().await.expect("connection");
        let pending = diesel::sql_query("SELECT count(*) AS rows FROM distributor_outbox")
            .get_result::<Pending>(&mut conn)
            .await
            .expect("outbox count");
        (pending.rows == 0).then_some(())
    })
    .await;
}

pub fn pool(settings: &Settings) -> PgPool {
    db::pool(&settings.database).expect("pool")
}

/// Every record of `topic` up to its current end, decoded.
pub async fn read_to_end<K, V>(settings: &Settings, codec: &EventCodec, topic: &Topic<K, V>) -> Vec<V>
where
    V: AvroSchemaSource + DeserializeOwned,
{
    let group = format!("test.reader.{}", Uuid::new_v4().simple());
    let consumer = kafka::consumer(&settings.kafka, &group, "test").expect("consumer");
    let mut assignment = TopicPartitionList::new();
    let mut ends = std::collections::HashMap::new();
    for partition in 0..topic.info.partitions {
        let (low, high) =
            consumer.fetch_watermarks(topic.name(), partition, Duration::from_secs(10)).expect("watermarks");
        if high > low {
            ends.insert(partition, high);
            assignment.add_partition_offset(topic.name(), partition, Offset::Beginning).expect("assign");
        }
    }
    if ends.is_empty() {
        return Vec::new();
    }
    consumer.assign(&assignment).expect("assign");
    let mut values = Vec::new();
    while !ends.is_empty() {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("records keep arriving until the end")
            .expect("no consumer error");
        if let Ok(value) = codec.decode::<V>(message.payload()).await {
            values.push(value);
        }
        if ends.get(&message.partition()).is_some_and(|end| message.offset() + 1 >= *end) {
            ends.remove(&message.partition());
        }
    }
    values
}

/// The body of an HTTP GET on the service's operational port.
pub async fn get(port: u16, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}")).await.expect("ops endpoint answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
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

/// How many of `event_ids` the consumer `consumer` has applied.
pub async fn applied_count(pool: &PgPool, consumer: &str, event_ids: &[Uuid]) -> i64 {
    use mamochi_common::schema::processed_events;
    let mut conn = pool.get().await.expect("connection");
    processed_events::table
        .filter(processed_events::consumer.eq(consumer))
        .filter(processed_events::event_id.eq_any(event_ids))
        .count()
        .get_result(&mut conn)
        .await
        .expect("dedupe count")
}
