//! Helpers for the accounting tests on the real stack: settings with a chosen
//! platform time, the service started in-process, sales produced to Kafka,
//! members inserted and weeks and statements read back over SQL; the rest
//! comes from `mamochi_testkit`, bound here to the accounting group.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use mamochi_common::schema::{statements, weekly_sales};
use mamochi_common::{kafka, Settings};
use mamochi_events::codec::EventCodec;
use mamochi_events::topics;
use mamochi_events::{PaymentMethod, SaleRecorded, VendorKey};
use mamochi_testkit::members::Member;
use mamochi_testkit::service::InProcess;
use mamochi_testkit::{self as kit, http, offsets, ports};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use uuid::Uuid;

pub use mamochi_testkit::offsets::end_offsets;
pub use mamochi_testkit::records::read_since as read_topic;
pub use mamochi_testkit::settings::pool;
pub use mamochi_testkit::wait::eventually;

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
    let mut settings = kit::settings::isolated(&[(mamochi_accounting::GROUP, topics::SALES.name())]);
    settings.time.scale = scale;
    settings.time.anchor_real = Some(Utc::now());
    settings.time.anchor_platform = Some(anchor);
    settings.accounting.grace_period_secs = grace_secs;
    settings.accounting.close_check_interval_secs = 1;
    settings
}

/// A running accounting service and the URL of its ops endpoints.
#[derive(Debug)]
pub struct Service {
    running: InProcess,
    pub ops_url: String,
}

/// Starts the service in-process, with its ops endpoints on a fresh port
/// (a crashed instance's port may not be free yet).
pub fn start(settings: &Settings) -> Service {
    let mut owned = settings.clone();
    owned.accounting.ops_listen = ports::free_listen();
    let ops_url = format!("http://{}", owned.accounting.ops_listen);
    let running = InProcess::spawn(|token| async move { mamochi_accounting::run(&owned, token).await });
    Service { running, ops_url }
}

impl Service {
    /// Cancels the token and waits for a clean exit.
    pub async fn stop(self) {
        self.running.stop().await;
    }

    /// Ends the service at once, as a crash would.
    pub async fn abort(self) {
        self.running.abort().await;
    }

    /// The /metrics text.
    pub async fn metrics(&self) -> String {
        http::get(&format!("{}/metrics", self.ops_url)).await.1
    }
}

/// Value of an unlabelled counter in Prometheus text (0 when absent).
pub fn metric(text: &str, name: &str) -> f64 {
    http::sample(text, name).unwrap_or(0.0)
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
        location: None,
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
    let member =
        Member { full_name: full_name.to_string(), email: email.to_string(), created_at, ..Member::with_id(member_id) };
    member.insert(pool).await;
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

/// Where the group's next read of each sales partition would start today:
/// the partitions' end offsets.
pub fn sales_end_offsets(settings: &Settings) -> Vec<(i32, i64)> {
    end_offsets(settings, &topics::SALES)
}

/// Waits until the accounting group has committed, on every sales
/// partition, an offset at or past `ends`. Offsets are committed only after
/// their batch's transaction, so every sale before `ends` (a redelivered one
/// included) has then been applied or recognised as a duplicate.
pub async fn wait_until_accounting_read(settings: &Settings, ends: &[(i32, i64)], timeout: Duration) {
    let group = settings.kafka.group(mamochi_accounting::GROUP);
    offsets::wait_until_committed(settings, &group, &topics::SALES, ends, timeout).await;
}

/// The accounting group's committed offset on each sales partition that has one.
pub fn accounting_committed(settings: &Settings) -> Vec<(i32, i64)> {
    offsets::committed(settings, &settings.kafka.group(mamochi_accounting::GROUP), &topics::SALES)
}

/// Commits `offsets` for the accounting group, as if every commit made after
/// them had been lost in a crash. Only valid while no member of the group is
/// running.
pub fn rewind_accounting_group(settings: &Settings, offsets: &[(i32, i64)]) {
    offsets::rewind(settings, &settings.kafka.group(mamochi_accounting::GROUP), &topics::SALES, offsets);
}
