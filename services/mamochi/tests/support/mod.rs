//! Helpers shared by the integration tests: settings for the running stack
//! and names that never collide between runs.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use mamochi_common::kafka;
use mamochi_common::Settings;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;

/// Settings of the stack the test command started (`stack env` exports them).
pub fn settings() -> Settings {
    Settings::load(None).expect("settings load from the environment")
}

/// The stack's state directory, where PID files and mail live.
pub fn state_dir() -> PathBuf {
    std::env::var_os("MAMOCHI_STATE_DIR")
        .map(PathBuf::from)
        .expect("MAMOCHI_STATE_DIR is set by `make test` (deploy/local/run-tests)")
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    format!("test.{prefix}.{}", uuid::Uuid::new_v4().simple())
}

/// Consumes `topic` in `group`, storing each record's offset after it has been
/// "processed" (decoded and recorded), until `expected` records have arrived,
/// then keeps listening for `linger` to catch anything extra. Commits the
/// stored offsets and leaves the group before returning.
pub async fn consume_values(
    settings: &Settings,
    group: &str,
    topic: &str,
    expected: usize,
    linger: Duration,
    give_up_after: Duration,
) -> Vec<u64> {
    let consumer = kafka::consumer(&settings.kafka, group, "test").expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut values = Vec::new();
    let mut stream = consumer.stream();
    let give_up = tokio::time::Instant::now() + give_up_after;
    let mut linger_until = None;
    loop {
        let deadline = match linger_until {
            Some(until) => until,
            None => give_up,
        };
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(message))) => {
                let payload = message.payload().expect("payload");
                let text = std::str::from_utf8(payload).expect("utf-8");
                values.push(text.parse::<u64>().expect("a number"));
                consumer.store_offset_from_message(&message).expect("store offset");
            }
            // librdkafka reports transient trouble (a dead broker, say) as
            // errors on the stream and recovers by itself; the deadline bounds it.
            Ok(Some(Err(error))) => eprintln!("consumer reported (continuing): {error}"),
            Ok(None) | Err(_) => break,
        }
        if values.len() == expected && linger_until.is_none() {
            if linger.is_zero() {
                break;
            }
            linger_until = Some(tokio::time::Instant::now() + linger);
        }
    }
    drop(stream);
    kafka::commit_stored_offsets(&consumer);
    values
}

/// Settings whose consumer groups belong to this test alone and start at the
/// current end of their topics, so records earlier tests left behind (a
/// 10,000-form backlog, say) are not this test's to process.
pub fn isolated_settings() -> Settings {
    let mut settings = settings();
    settings.kafka.group_prefix = format!("test-{}-", uuid::Uuid::new_v4().simple());
    let groups = [
        (mamochi_approval::FORMS_GROUP, mamochi_events::topics::REGISTRATIONS.name()),
        (mamochi_approval::REVIEWS_GROUP, mamochi_events::topics::REGISTRATION_REVIEWS.name()),
        (mamochi_distributor::service::SALES_GROUP, mamochi_events::topics::SALES.name()),
        (mamochi_distributor::service::STOCK_GROUP, mamochi_events::topics::STOCK.name()),
        (mamochi_accounting::GROUP, mamochi_events::topics::SALES.name()),
        (mamochi_notifier::service::GROUP, mamochi_events::topics::EMAIL_REQUESTS.name()),
    ];
    for (group, topic) in groups {
        kafka::start_group_at_end(&settings.kafka, &settings.kafka.group(group), topic).expect("group starts at the end");
    }
    settings
}
