//! Helpers for the accounting tests that run the real binary
//! (`mamochi run accounting`) against the real stack: processes started with
//! a shared sped-up platform clock, sales produced to Kafka, members inserted
//! and weeks, statements and email requests read back. Processes, fixtures,
//! offsets and waits come from `mamochi_testkit`.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures::StreamExt;
use mamochi_common::db::PgPool;
use mamochi_common::schema::{statements, weekly_sales};
use mamochi_common::{kafka, Settings};
use mamochi_events::codec::EventCodec;
use mamochi_events::publish::publish;
use mamochi_events::topics::TopicInfo;
use mamochi_events::{topics, EmailRequested, PaymentMethod, SaleRecorded, VendorKey};
use mamochi_testkit::members::Member;
use mamochi_testkit::processes::Mamochi;
use mamochi_testkit::{offsets, ports};
use nix::sys::signal::Signal;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

pub use mamochi_testkit::wait::eventually;

pub fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("rfc3339").with_timezone(&Utc)
}

/// A platform clock every process of a test shares: at real instant
/// `anchor_real` it is `anchor_platform`, running `scale` times real time.
#[derive(Debug, Clone, Copy)]
pub struct TestClock {
    pub anchor_real: DateTime<Utc>,
    pub anchor_platform: DateTime<Utc>,
    pub scale: f64,
}

impl TestClock {
    pub fn starting_now_at(anchor_platform: DateTime<Utc>, scale: f64) -> Self {
        Self { anchor_real: Utc::now(), anchor_platform, scale }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let real_ms = (Utc::now() - self.anchor_real).num_milliseconds() as f64;
        self.anchor_platform + chrono::Duration::milliseconds((real_ms * self.scale) as i64)
    }

    /// Waits (without a deadline of its own: the clock always gets there)
    /// until platform time is at least `instant`.
    pub async fn wait_until(&self, instant: DateTime<Utc>) {
        while self.now() < instant {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A running `mamochi run accounting` process; killed if the test panics
/// before stopping it, so no process outlives its test.
#[derive(Debug)]
pub struct Accounting(Mamochi);

impl Accounting {
    /// Closing passes the process has completed, from its `/metrics`;
    /// `None` while its operations port does not answer.
    pub async fn closing_passes(&self) -> Option<u64> {
        let url = format!("http://127.0.0.1:{}/metrics", self.0.ops_port?);
        let text = reqwest::get(url).await.ok()?.text().await.ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix("mamochi_accounting_closing_passes_total "))
            .and_then(|value| value.trim().parse().ok())
    }

    /// Sends `signal` and reaps the process.
    pub fn stop(self, signal: Signal) {
        self.0.stop(signal);
    }
}

/// Starts `mamochi run accounting` in the test's groups, on `clock`, with
/// `grace_secs` of grace, a 1 s close check and at most `max_batch` sales per
/// transaction.
pub fn start_accounting(settings: &Settings, clock: &TestClock, grace_secs: i64, max_batch: usize) -> Accounting {
    let ops_port = ports::free_port();
    let envs = [
        ("MAMOCHI__KAFKA__GROUP_PREFIX", settings.kafka.group_prefix.clone()),
        ("MAMOCHI__ACCOUNTING__OPS_LISTEN", format!("127.0.0.1:{ops_port}")),
        ("MAMOCHI__ACCOUNTING__GRACE_PERIOD_SECS", grace_secs.to_string()),
        ("MAMOCHI__ACCOUNTING__CLOSE_CHECK_INTERVAL_SECS", "1".to_string()),
        ("MAMOCHI__ACCOUNTING__MAX_BATCH", max_batch.to_string()),
        ("MAMOCHI__TIME__SCALE", clock.scale.to_string()),
        ("MAMOCHI__TIME__ANCHOR_REAL", clock.anchor_real.to_rfc3339_opts(SecondsFormat::Millis, true)),
        ("MAMOCHI__TIME__ANCHOR_PLATFORM", clock.anchor_platform.to_rfc3339_opts(SecondsFormat::Millis, true)),
        ("MAMOCHI__LOG__FILTER", "warn".to_string()),
    ];
    Accounting(Mamochi::spawn(env!("CARGO_BIN_EXE_mamochi"), ["run", "accounting"], &envs).with_ops_port(ops_port))
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

/// Produces `sales` keyed by vendor and waits for every acknowledgement.
pub async fn produce_sales(settings: &Settings, sales: &[SaleRecorded]) {
    let codec = EventCodec::new(&settings.registry.url);
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    for chunk in sales.chunks(5_000) {
        futures::future::join_all(chunk.iter().map(|sale| {
            let (producer, codec) = (&producer, &codec);
            async move {
                let key = VendorKey { vendor_id: sale.vendor_id };
                publish(producer, codec, &topics::SALES, &key, sale, None).await
            }
        }))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .expect("sales acknowledged");
    }
}

/// Sales counted for `vendors`, all weeks.
pub async fn applied(pool: &PgPool, vendors: &[Uuid]) -> i64 {
    let mut conn = pool.get().await.expect("connection");
    let counts: Vec<i64> = weekly_sales::table
        .filter(weekly_sales::vendor_id.eq_any(vendors))
        .select(weekly_sales::sales_count)
        .load(&mut conn)
        .await
        .expect("query weekly_sales");
    counts.iter().sum()
}

/// (sales, units, CLP, closed) of one vendor's week, if it has a row.
pub async fn week(pool: &PgPool, vendor: Uuid, iso_week: &str) -> Option<(i64, i64, i64, bool)> {
    let mut conn = pool.get().await.expect("connection");
    weekly_sales::table
        .find((vendor, iso_week))
        .select((
            weekly_sales::sales_count,
            weekly_sales::units,
            weekly_sales::earnings_clp,
            weekly_sales::closed_at.is_not_null(),
        ))
        .first(&mut conn)
        .await
        .optional()
        .expect("query weekly_sales")
}

/// A statement row: (statement id, sales, units, CLP, published).
pub type StatementRow = (Uuid, i64, i64, i64, bool);

/// Every statement of `vendor` for `iso_week`.
pub async fn statements_of(pool: &PgPool, vendor: Uuid, iso_week: &str) -> Vec<StatementRow> {
    let mut conn = pool.get().await.expect("connection");
    statements::table
        .filter(statements::vendor_id.eq(vendor))
        .filter(statements::iso_week.eq(iso_week))
        .select((
            statements::statement_id,
            statements::sales_count,
            statements::units,
            statements::earnings_clp,
            statements::published_at.is_not_null(),
        ))
        .load(&mut conn)
        .await
        .expect("query statements")
}

/// Inserts an approved member (and the registration it comes from).
pub async fn add_member(pool: &PgPool, member_id: Uuid, email: &str, created_at: DateTime<Utc>) {
    let member = Member {
        full_name: "Socia de Prueba".to_string(),
        email: email.to_string(),
        created_at,
        ..Member::with_id(member_id)
    };
    member.insert(pool).await;
}

/// The catalog's topic called `name`.
fn topic_named(name: &str) -> &'static TopicInfo {
    topics::ALL.into_iter().find(|topic| topic.name == name).unwrap_or_else(|| panic!("{name} is in the catalog"))
}

/// Each partition's end offset of `topic` now.
pub fn end_offsets(settings: &Settings, topic: &str) -> Vec<(i32, i64)> {
    offsets::end_offsets(settings, topic_named(topic))
}

/// Waits until `group` has committed, on every partition of `topic`, an
/// offset at or past `ends` (from [`end_offsets`]). The services commit an
/// offset only after its record's effect is durable, so every record before
/// `ends`, a redelivered one included, has then been handled.
pub async fn wait_until_committed(
    settings: &Settings,
    group: &str,
    topic: &str,
    ends: &[(i32, i64)],
    timeout: Duration,
) {
    offsets::wait_until_committed(settings, group, topic_named(topic), ends, timeout).await;
}

/// A reader of the email-requests topic from its current end: create it
/// before the act, read it after.
#[derive(Debug)]
pub struct EmailRequests {
    ends: Vec<(i32, i64)>,
}

impl EmailRequests {
    pub fn from_now(settings: &Settings) -> Self {
        Self { ends: offsets::end_offsets(settings, &topics::EMAIL_REQUESTS) }
    }

    /// Every email request written since [`Self::from_now`] up to the
    /// topic's end as of this call, decoded. Panics if the end is not reached
    /// within `wait`.
    pub async fn read_to_end(&self, settings: &Settings, wait: Duration) -> Vec<EmailRequested> {
        let group = format!("test.accounting.emails.{}", Uuid::new_v4().simple());
        let consumer = kafka::consumer(&settings.kafka, &group, "test").expect("consumer");
        let topic = topics::EMAIL_REQUESTS.name();
        let mut assignment = TopicPartitionList::new();
        // Partitions still to read, each up to its end now (exclusive).
        let mut pending = std::collections::HashMap::new();
        for (partition, offset) in &self.ends {
            let (_, high) = consumer.fetch_watermarks(topic, *partition, Duration::from_secs(10)).expect("watermarks");
            if high > *offset {
                pending.insert(*partition, high);
            }
            assignment.add_partition_offset(topic, *partition, Offset::Offset(*offset)).expect("partition offset");
        }
        consumer.assign(&assignment).expect("assign");
        let codec = EventCodec::new(&settings.registry.url);
        let mut stream = consumer.stream();
        let mut emails = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while !pending.is_empty() {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(message))) => {
                    if let Some(end) = pending.get(&message.partition()).copied() {
                        if message.offset() < end {
                            emails.push(
                                codec.decode::<EmailRequested>(message.payload()).await.expect("an email request"),
                            );
                        }
                        if message.offset() + 1 >= end {
                            pending.remove(&message.partition());
                        }
                    }
                }
                Ok(Some(Err(error))) => eprintln!("reader: {error}"),
                Ok(None) | Err(_) => panic!("email requests not read to their end in {wait:?}: {pending:?} left"),
            }
        }
        emails
    }

    /// Every email request written since [`Self::from_now`], decoded, read
    /// until the topic has been quiet for `idle`.
    pub async fn read(&self, settings: &Settings, idle: Duration) -> Vec<EmailRequested> {
        let group = format!("test.accounting.emails.{}", Uuid::new_v4().simple());
        let consumer = kafka::consumer(&settings.kafka, &group, "test").expect("consumer");
        let mut assignment = TopicPartitionList::new();
        for (partition, offset) in &self.ends {
            assignment
                .add_partition_offset(topics::EMAIL_REQUESTS.name(), *partition, Offset::Offset(*offset))
                .expect("partition offset");
        }
        consumer.assign(&assignment).expect("assign");
        let codec = EventCodec::new(&settings.registry.url);
        let mut stream = consumer.stream();
        let mut emails = Vec::new();
        loop {
            match tokio::time::timeout(idle, stream.next()).await {
                Ok(Some(Ok(message))) => {
                    emails.push(codec.decode::<EmailRequested>(message.payload()).await.expect("an email request"));
                }
                Ok(Some(Err(error))) => eprintln!("reader: {error}"),
                Ok(None) | Err(_) => break,
            }
        }
        emails
    }
}
