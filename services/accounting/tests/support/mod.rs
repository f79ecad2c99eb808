//! Helpers for the accounting tests on the real stack: settings with a chosen
//! platform time, the service started in-process, sales produced to Kafka,
//! members inserted and weeks read back over SQL, records read from topics.
#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use mamochi_common::schema::{members, registrations, statements, weekly_sales};
use mamochi_common::shutdown::Shutdown;
use mamochi_common::{db, kafka, Settings};
use mamochi_events::codec::EventCodec;
use mamochi_events::topics::{self, Topic};
use mamochi_events::{AvroSchemaSource, PaymentMethod, SaleRecorded, VendorKey};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The tests share one database and each sets its own platform time (which
/// closes other tests' weeks too): they run one at a time.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

pub fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("rfc3339").with_timezone(&Utc)
}

/// The stack's settings with platform time `anchor` now, running `scale`
/// times faster than real time, the given grace period and a 1 s close check.
/// The accounting group is this test's own and starts at the current end of
/// the sales topic: sales and partition watermarks other runs left behind
/// (a benchmark's backlog, sale times from another week) are not its to see.
pub fn settings(anchor: DateTime<Utc>, scale: f64, grace_secs: i64) -> Settings {
    let mut settings = Settings::load(None).expect("settings load from the environment");
    settings.kafka.group_prefix = format!("test-{}-", Uuid::new_v4().simple());
    let group = settings.kafka.group(mamochi_accounting::GROUP);
    kafka::start_group_at_end(&settings.kafka, &group, topics::SALES.name()).expect("group starts at the end");
    settings.time.scale = scale;
    settings.time.anchor_real = Some(Utc::now());
    settings.time.anchor_platform = Some(anchor);
    settings.accounting.grace_period_secs = grace_secs;
    settings.accounting.close_check_interval_secs = 1;
    settings
}

fn free_port() -> u16 {
    mamochi_common::ports::unused_loopback_port().expect("a free loopback port")
}

/// A running accounting service.
pub struct Service {
    pub shutdown: Shutdown,
    pub handle: JoinHandle<anyhow::Result<()>>,
    pub ops_url: String,
}

/// Starts the service in-process, with its ops endpoints on a fresh port
/// (a crashed instance's port may not be free yet).
pub fn start(settings: &Settings) -> Service {
    let shutdown = Shutdown::new();
    let mut owned = settings.clone();
    owned.accounting.ops_listen = format!("127.0.0.1:{}", free_port());
    let ops_url = format!("http://{}", owned.accounting.ops_listen);
    let token = shutdown.clone();
    let handle = tokio::spawn(async move { mamochi_accounting::run(&owned, token).await });
    Service { shutdown, handle, ops_url }
}

impl Service {
    /// Cancels the token and waits for a clean exit.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("service stops within 30 s")
            .expect("service task did not panic");
        result.expect("service returns Ok after shutdown");
    }

    /// The /metrics text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.ops_url))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }
}

/// Value of an unlabelled counter in Prometheus text.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

pub fn pool(settings: &Settings) -> PgPool {
    db::pool(&settings.database).expect("pool")
}

pub fn sale(vendor: Uuid, occurred_at: DateTime<Utc>, quantity: i32, unit_price_clp: i64) -> SaleRecorded {
    SaleRecorded {
        sale_id: Uuid::new_v4(),
        vendor_id: vendor,
        quantity,
        unit_price_clp,
        total_clp: i64::from(quantity) * unit_price_clp,
        payment_method: PaymentMethod::Cash,
        occurred_at,
        recorded_at: Utc::now(),
    }
}

/// Produces `sales` to the sales topic, keyed by vendor, and waits for every
/// acknowledgement.
pub async fn produce_sales(settings: &Settings, sales: &[SaleRecorded]) {
    let producer: FutureProducer = kafka::producer(&settings.kafka, "accounting-test").expect("producer");
    let codec = EventCodec::new(&settings.registry.url);
    let mut encoded = Vec::with_capacity(sales.len());
    for sale in sales {
        let key = VendorKey { vendor_id: sale.vendor_id };
        encoded.push(codec.encode(&topics::SALES, &key, sale).await.expect("encode sale"));
    }
    for chunk in encoded.chunks(5_000) {
        let sends = chunk.iter().map(|(key, value)| {
            producer.send(
                FutureRecord::to(topics::SALES.name()).key(key).payload(value),
                Timeout::After(Duration::from_secs(60)),
            )
        });
        for result in futures::future::join_all(sends).await {
            result.expect("sale acknowledged");
        }
    }
}

/// Inserts an approved member (and the registration it comes from).
pub async fn add_member(pool: &PgPool, member_id: Uuid, full_name: &str, email: &str, created_at: DateTime<Utc>) {
    let mut conn = pool.get().await.expect("connection");
    let registration_id = Uuid::new_v4();
    let tag = member_id.simple().to_string();
    diesel::insert_into(registrations::table)
        .values((
            registrations::registration_id.eq(registration_id),
            registrations::full_name.eq(full_name),
            registrations::rut.eq(&tag),
            registrations::email.eq(email),
            registrations::phone.eq("+56911111111"),
            registrations::comuna.eq("Santiago"),
            registrations::cart_plate.eq("BCDF12"),
            registrations::paid.eq(false),
            registrations::tracking_token_sha256.eq(&tag),
            registrations::status.eq("approved"),
            registrations::submitted_at.eq(created_at),
        ))
        .execute(&mut conn)
        .await
        .expect("insert registration");
    diesel::insert_into(members::table)
        .values((
            members::member_id.eq(member_id),
            members::registration_id.eq(registration_id),
            members::full_name.eq(full_name),
            members::rut.eq(&tag),
            members::email.eq(email),
            members::phone.eq("+56911111111"),
            members::comuna.eq("Santiago"),
            members::cart_plate.eq("BCDF12"),
            members::paid.eq(false),
            members::api_key_id.eq(&tag),
            members::api_key_sha256.eq(&tag),
            members::created_at.eq(created_at),
        ))
        .execute(&mut conn)
        .await
        .expect("insert member");
}

/// A `weekly_sales` row as the tests read it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct WeekRow {
    pub week_start: DateTime<Utc>,
    pub week_end: DateTime<Utc>,
    pub sales_count: i64,
    pub units: i64,
    pub earnings_clp: i64,
    pub closed_at: Option<DateTime<Utc>>,
}

pub async fn week_row(pool: &PgPool, vendor: Uuid, iso_week: &str) -> Option<WeekRow> {
    let mut conn = pool.get().await.expect("connection");
    weekly_sales::table
        .find((vendor, iso_week))
        .select((
            weekly_sales::week_start,
            weekly_sales::week_end,
            weekly_sales::sales_count,
            weekly_sales::units,
            weekly_sales::earnings_clp,
            weekly_sales::closed_at,
        ))
        .first(&mut conn)
        .await
        .optional()
        .expect("query weekly_sales")
}

/// Sum of sales counted for `vendors`, all weeks.
pub async fn total_sales(pool: &PgPool, vendors: &[Uuid]) -> i64 {
    #[derive(QueryableByName)]
    struct Total {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
    }
    let mut conn = pool.get().await.expect("connection");
    diesel::sql_query("SELECT COALESCE(sum(sales_count), 0)::int8 AS total FROM weekly_sales WHERE vendor_id = ANY($1)")
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(vendors)
        .get_result::<Total>(&mut conn)
        .await
        .expect("sum of sales")
        .total
}

/// A `statements` row as the tests read it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct StatementRow {
    pub statement_id: Uuid,
    pub sales_count: i64,
    pub units: i64,
    pub earnings_clp: i64,
    pub average_ticket_clp: i64,
    pub published_at: Option<DateTime<Utc>>,
}

/// Every statement row of `vendor` for `iso_week` (the schema allows one).
pub async fn statement_rows(pool: &PgPool, vendor: Uuid, iso_week: &str) -> Vec<StatementRow> {
    let mut conn = pool.get().await.expect("connection");
    statements::table
        .filter(statements::vendor_id.eq(vendor))
        .filter(statements::iso_week.eq(iso_week))
        .select((
            statements::statement_id,
            statements::sales_count,
            statements::units,
            statements::earnings_clp,
            statements::average_ticket_clp,
            statements::published_at,
        ))
        .load(&mut conn)
        .await
        .expect("query statements")
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout`.
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each partition's end offset of `topic` now: where a later read or wait
/// starts or stops.
pub fn end_offsets<K, V>(settings: &Settings, topic: &Topic<K, V>) -> Vec<(i32, i64)> {
    let consumer: rdkafka::consumer::BaseConsumer =
        kafka::consumer_config(&settings.kafka, "test.accounting.watermarks", "accounting-test")
            .create()
            .expect("consumer");
    (0..topic.info.partitions)
        .map(|partition| {
            let (_, high) =
                consumer.fetch_watermarks(topic.name(), partition, Duration::from_secs(10)).expect("watermarks");
            (partition, high)
        })
        .collect()
}

/// Where the group's next read of each sales partition would start today:
/// the partitions' end offsets.
pub fn sales_end_offsets(settings: &Settings) -> Vec<(i32, i64)> {
    end_offsets(settings, &topics::SALES)
}

/// Every record of `topic` written between `from` (a mark taken with
/// [`end_offsets`] before the act) and the topic's end now, decoded. Reads
/// until its position reaches that end on every partition, so a record
/// missing from the answer was not in the topic when it was called; panics
/// if the end is not reached within a minute.
pub async fn read_topic<K, V>(settings: &Settings, topic: &Topic<K, V>, from: &[(i32, i64)]) -> Vec<V>
where
    V: AvroSchemaSource + DeserializeOwned,
{
    use rdkafka::{Offset, TopicPartitionList};
    let ends = end_offsets(settings, topic);
    let group = format!("test.accounting.reader.{}", Uuid::new_v4().simple());
    let consumer = kafka::consumer(&settings.kafka, &group, "accounting-test").expect("consumer");
    let mut assignment = TopicPartitionList::new();
    let mut pending: Vec<(i32, i64)> = Vec::new();
    for (partition, start) in from {
        let end = ends.iter().find(|(p, _)| p == partition).map_or(0, |(_, end)| *end);
        if end > *start {
            assignment.add_partition_offset(topic.name(), *partition, Offset::Offset(*start)).expect("offset");
            pending.push((*partition, end));
        }
    }
    let codec = EventCodec::new(&settings.registry.url);
    let mut values = Vec::new();
    if pending.is_empty() {
        return values;
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !pending.is_empty() {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(message)) => {
                let (partition, offset) = (message.partition(), message.offset());
                values.push(codec.decode::<V>(message.payload()).await.expect("decodes"));
                pending.retain(|(p, end)| !(*p == partition && offset + 1 >= *end));
            }
            Ok(Err(error)) => eprintln!("reader: {error}"),
            Err(_) => panic!("{} not read to its end {ends:?} within a minute: {pending:?} left", topic.name()),
        }
    }
    values
}

/// Waits until the accounting group has committed, on every sales
/// partition, an offset at or past `ends`. Offsets are committed only after
/// their batch's transaction, so every sale before `ends` (a redelivered one
/// included) has then been applied or recognised as a duplicate.
pub async fn wait_until_accounting_read(settings: &Settings, ends: &[(i32, i64)], timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let committed = accounting_committed(settings);
        let behind: Vec<_> = ends
            .iter()
            .filter(|(partition, end)| {
                committed.iter().find(|(p, _)| p == partition).map_or(*end > 0, |(_, offset)| offset < end)
            })
            .collect();
        if behind.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the accounting group did not commit past {behind:?} in time: {committed:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The accounting group's committed offset on each sales partition that has one.
pub fn accounting_committed(settings: &Settings) -> Vec<(i32, i64)> {
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: rdkafka::consumer::BaseConsumer =
        kafka::consumer_config(&settings.kafka, &settings.kafka.group(mamochi_accounting::GROUP), "accounting-test")
            .create()
            .expect("consumer");
    let mut list = TopicPartitionList::new();
    for partition in 0..topics::SALES.info.partitions {
        list.add_partition(topics::SALES.name(), partition);
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(10)).expect("committed offsets");
    committed
        .elements()
        .iter()
        .filter_map(|element| match element.offset() {
            Offset::Offset(offset) => Some((element.partition(), offset)),
            _ => None,
        })
        .collect()
}

/// Commits `offsets` for the accounting group, as if every commit made after
/// them had been lost in a crash: the next consumer re-reads from there.
/// Only valid while no member of the group is running.
pub fn rewind_accounting_group(settings: &Settings, offsets: &[(i32, i64)]) {
    use rdkafka::consumer::CommitMode;
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: rdkafka::consumer::BaseConsumer =
        kafka::consumer_config(&settings.kafka, &settings.kafka.group(mamochi_accounting::GROUP), "accounting-test")
            .create()
            .expect("consumer");
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(topics::SALES.name(), *partition, Offset::Offset(*offset)).expect("partition offset");
    }
    consumer.commit(&list, CommitMode::Sync).expect("commit rewound offsets");
}
