//! Helpers for the notifier's tests on the real stack: settings, a running
//! notifier, producing email requests, the consumer group's progress and
//! members, the dead letters, the `emails` table, and an SMTP relay the
//! tests control ([`relay`]); the generic parts (settings, waits, offsets,
//! the SMTP sink's mail) come from `mamochi_testkit`.
#![allow(dead_code, unused_imports)]

pub mod relay;

use std::collections::HashMap;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use mamochi_common::kafka;
use mamochi_common::schema::emails;
use mamochi_common::Settings;
use mamochi_events::codec::EventCodec;
use mamochi_events::dead_letter::headers;
use mamochi_events::publish::{publish, Delivered};
use mamochi_events::topics::{DEAD_LETTERS, EMAIL_REQUESTS};
use mamochi_events::{EmailRequested, MessageKey};
use mamochi_notifier::service::GROUP;
use mamochi_notifier::Notifier;
use mamochi_testkit::service::InProcess;
use mamochi_testkit::{self as kit, offsets};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

pub use mamochi_testkit::http::sample;
pub use mamochi_testkit::mail::{body, emails_with_id, eml_files, header, mail_dir};
pub use mamochi_testkit::ports::free_port;
pub use mamochi_testkit::settings::pool;
pub use mamochi_testkit::wait::eventually;

/// Tests share the database, the topic and the `notifier` group; each takes
/// this lock so one notifier runs at a time and its metrics are its own.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The stack's settings, quiet logs, ops on a port of the kernel's choosing,
/// and a `notifier` group of this test process only, starting at the current
/// end of the topic (one prefix per process, so the tests of a file share
/// the group as one long-running service would).
pub fn settings() -> Settings {
    let mut settings = kit::settings::load();
    settings.notifier.ops_listen = "127.0.0.1:0".to_string();
    kit::settings::quiet_logs(&mut settings);
    kit::settings::process_groups(&mut settings, &[(GROUP, EMAIL_REQUESTS.name())]);
    settings
}

/// A notifier running in this process until stopped.
#[derive(Debug)]
pub struct Running {
    pub ops_port: u16,
    running: InProcess,
}

impl Running {
    pub async fn start(settings: &Settings) -> Self {
        let service = Notifier::build(settings).await.expect("notifier builds");
        let ops_port = service.ops_port();
        let running = InProcess::spawn(|token| service.run_until_stopped(token));
        Self { ops_port, running }
    }

    /// Cancels and waits: the service must stop cleanly.
    pub async fn stop(self) {
        self.running.stop().await;
    }

    /// The service has not returned (it neither failed nor stopped).
    pub fn is_running(&self) -> bool {
        self.running.is_running()
    }

    pub async fn metrics(&self) -> String {
        kit::http::metrics(self.ops_port).await
    }
}

/// Produces an email request to the real topic.
pub async fn request(settings: &Settings, codec: &EventCodec, value: &EmailRequested) -> Delivered {
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let key = MessageKey { message_id: value.message_id };
    publish(&producer, codec, &EMAIL_REQUESTS, &key, value, None).await.expect("request acknowledged")
}

/// A request to a unique address with an ASCII subject.
pub fn email_request(category: &str, body: &str, sealed_secret: Option<Vec<u8>>) -> EmailRequested {
    let message_id = Uuid::new_v4();
    EmailRequested {
        message_id,
        to: format!("vendor-{}@test.mamochi.cl", message_id.simple()),
        subject: format!("MAMOCHI test {}", message_id.simple()),
        body_text: body.to_string(),
        category: category.to_string(),
        requested_at: chrono::Utc::now(),
        sealed_secret,
    }
}

/// Offset the `notifier` group has committed on `partition` (-1 for none).
pub fn committed(settings: &Settings, partition: i32) -> i64 {
    offsets::committed_on(settings, &settings.kafka.group(GROUP), &EMAIL_REQUESTS, partition)
}

/// Whether the `notifier` group has committed every partition to its end.
pub fn caught_up(settings: &Settings) -> bool {
    offsets::caught_up(settings, &settings.kafka.group(GROUP), &EMAIL_REQUESTS)
}

/// Member ids of the `notifier` group now (a member the group evicted comes
/// back under a new id).
pub fn group_members(settings: &Settings) -> Vec<String> {
    offsets::group_members(settings, &settings.kafka.group(GROUP))
}

/// The dead-letter topic's end now: dead letters parked from here on are
/// the test's.
pub fn dead_letters_end(settings: &Settings) -> i64 {
    offsets::end_offsets(settings, &DEAD_LETTERS).into_iter().next().map_or(0, |(_, end)| end)
}

/// The headers of the dead letter parked for the email request at
/// `source`, read from offset `from` of the dead-letter topic; waits up to
/// `within` for it.
pub async fn dead_letter_of(
    settings: &Settings,
    from: i64,
    source: &Delivered,
    within: Duration,
) -> HashMap<String, String> {
    let reader =
        kafka::consumer(&settings.kafka, &format!("test.dlq.{}", Uuid::new_v4().simple()), "test").expect("reader");
    let mut at = TopicPartitionList::new();
    at.add_partition_offset(DEAD_LETTERS.name, 0, Offset::Offset(from)).expect("tpl");
    reader.assign(&at).expect("assign");
    let (partition, offset) = (source.partition.to_string(), source.offset.to_string());
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let record = tokio::time::timeout_at(deadline, reader.recv())
            .await
            .expect("the dead letter to be parked in time")
            .expect("dead letters readable");
        let found: HashMap<String, String> = record
            .headers()
            .map(|all| {
                all.iter()
                    .filter_map(|header| {
                        Some((header.key.to_string(), String::from_utf8_lossy(header.value?).into_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let from_source = found.get(headers::SOURCE_TOPIC).map(String::as_str) == Some(EMAIL_REQUESTS.name())
            && found.get(headers::SOURCE_PARTITION) == Some(&partition)
            && found.get(headers::SOURCE_OFFSET) == Some(&offset);
        if from_source {
            return found;
        }
    }
}

/// The `emails` row's status, attempts and last error.
pub async fn failure_row(pool: &PgPool, message_id: Uuid) -> Option<(String, i32, Option<String>)> {
    let mut conn = pool.get().await.expect("connection");
    emails::table
        .find(message_id)
        .select((emails::status, emails::attempts, emails::last_error))
        .first(&mut conn)
        .await
        .optional()
        .expect("emails query")
}

/// Lets a notifier on the shared sink send whatever earlier tests and runs
/// left in the topic, so a test starts with the group at the end.
pub async fn drain_backlog(settings: &Settings) {
    let running = Running::start(settings).await;
    eventually(Duration::from_secs(120), "the notifier group to catch up", || async {
        caught_up(settings).then_some(())
    })
    .await;
    running.stop().await;
}

/// The `emails` row: (status, attempts, sent_at is set).
pub async fn email_row(pool: &PgPool, message_id: Uuid) -> Option<(String, i32, bool)> {
    let mut conn = pool.get().await.expect("connection");
    emails::table
        .find(message_id)
        .select((emails::status, emails::attempts, emails::sent_at.is_not_null()))
        .first(&mut conn)
        .await
        .optional()
        .expect("emails query")
}
