//! Helpers for the notifier's tests on the real stack: settings, a running
//! notifier, producing email requests, the consumer group's progress and
//! members, the dead letters, the `emails` table, the SMTP sink's `.eml`
//! files, and an SMTP relay the tests control ([`relay`]).
#![allow(dead_code)]

pub mod relay;

use std::collections::HashMap;

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db::{self, PgPool};
use mamochi_common::kafka;
use mamochi_common::schema::emails;
use mamochi_common::shutdown::Shutdown;
use mamochi_common::Settings;
use mamochi_events::codec::EventCodec;
use mamochi_events::dead_letter::headers;
use mamochi_events::publish::{publish, Delivered};
use mamochi_events::topics::{DEAD_LETTERS, EMAIL_REQUESTS};
use mamochi_events::{EmailRequested, MessageKey};
use mamochi_notifier::service::GROUP;
use mamochi_notifier::Notifier;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

/// Tests share the database, the topic and the `notifier` group; each takes
/// this lock so one notifier runs at a time and its metrics are its own.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn settings() -> Settings {
    let mut settings = Settings::load(None).expect("settings load from the environment");
    settings.notifier.ops_listen = "127.0.0.1:0".to_string();
    settings.log.filter = "warn,librdkafka=error,rdkafka=error".to_string();
    static LOGS: std::sync::Once = std::sync::Once::new();
    LOGS.call_once(|| mamochi_common::telemetry::init(&settings.log));
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
            &kafka_settings.group(GROUP),
            mamochi_events::topics::EMAIL_REQUESTS.name(),
        )
        .expect("group starts at the end");
        prefix
    });
    settings.kafka.group_prefix = prefix.clone();
    settings
}

/// A notifier running in this process until stopped.
pub struct Running {
    pub ops_port: u16,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub async fn start(settings: &Settings) -> Self {
        let service = Notifier::build(settings).await.expect("notifier builds");
        let ops_port = service.ops_port();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(service.run_until_stopped(shutdown.clone()));
        Self { ops_port, shutdown, task }
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

    /// The service has not returned (it neither failed nor stopped).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://127.0.0.1:{}/metrics", self.ops_port))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("body")
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
    // Only reads the group's offsets; never joins the group.
    let probe: BaseConsumer =
        kafka::consumer_config(&settings.kafka, &settings.kafka.group(GROUP), "test-probe").create().expect("probe");
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition(EMAIL_REQUESTS.name(), partition);
    let offsets = probe.committed_offsets(wanted, Duration::from_secs(10)).expect("committed offsets");
    match offsets.find_partition(EMAIL_REQUESTS.name(), partition).map(|element| element.offset()) {
        Some(Offset::Offset(offset)) => offset,
        _ => -1,
    }
}

/// Whether the `notifier` group has committed every partition to its end.
pub fn caught_up(settings: &Settings) -> bool {
    let probe: BaseConsumer =
        kafka::consumer_config(&settings.kafka, &settings.kafka.group(GROUP), "test-probe").create().expect("probe");
    (0..EMAIL_REQUESTS.info.partitions).all(|partition| {
        let (low, high) =
            probe.fetch_watermarks(EMAIL_REQUESTS.name(), partition, Duration::from_secs(10)).expect("watermarks");
        high == low || committed(settings, partition) >= high
    })
}

/// Member ids of the `notifier` group now (a member the group evicted comes
/// back under a new id).
pub fn group_members(settings: &Settings) -> Vec<String> {
    let probe: BaseConsumer =
        kafka::consumer_config(&settings.kafka, &settings.kafka.group(GROUP), "test-probe").create().expect("probe");
    let group = settings.kafka.group(GROUP);
    let list = probe.fetch_group_list(Some(group.as_str()), Duration::from_secs(10)).expect("group list");
    list.groups().iter().flat_map(|group| group.members()).map(|member| member.id().to_string()).collect()
}

/// The dead-letter topic's end now: dead letters parked from here on are
/// the test's.
pub fn dead_letters_end(settings: &Settings) -> i64 {
    let probe: BaseConsumer =
        kafka::consumer_config(&settings.kafka, "test-probe", "test-probe").create().expect("probe");
    probe.fetch_watermarks(DEAD_LETTERS.name, 0, Duration::from_secs(10)).expect("watermarks").1
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

pub fn pool(settings: &Settings) -> PgPool {
    db::pool(&settings.database).expect("pool")
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

/// The shared SMTP sink's directory.
pub fn mail_dir() -> PathBuf {
    PathBuf::from(std::env::var("MAMOCHI_MAIL_DIR").expect("MAMOCHI_MAIL_DIR is set (deploy/local/stack env)"))
}

/// Every `.eml` in `dir` (finished files only; the sink renames when done).
pub fn eml_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".eml"))
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .collect()
}

/// The `.eml` files in `dir` whose Message-ID is the request's.
pub fn emails_with_id(dir: &Path, message_id: Uuid) -> Vec<String> {
    let header = format!("Message-ID: <{message_id}@mamochi.cl>");
    eml_files(dir).into_iter().filter(|text| text.lines().any(|line| line.trim_end() == header)).collect()
}

/// The value of a header of a raw message.
pub fn header<'a>(eml: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    eml.lines().find_map(|line| line.strip_prefix(prefix.as_str())).map(str::trim_end)
}

/// The body of a raw message, quoted-printable decoded.
pub fn body(eml: &str) -> String {
    let raw = eml.split_once("\r\n\r\n").or_else(|| eml.split_once("\n\n")).map(|(_, body)| body).unwrap_or("");
    decode_quoted_printable(raw)
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

/// A free loopback port, outside the range outgoing connections take theirs from.
pub fn free_port() -> u16 {
    mamochi_common::ports::unused_loopback_port().expect("a free loopback port")
}

/// The value of an unlabelled-or-labelled sample line in Prometheus text.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}
