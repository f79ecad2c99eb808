//! Helpers shared by the mamochi crate's integration tests: settings whose
//! consumer groups are the test's own, a counting consumer, and the short
//! journey; settings and unique names come from `mamochi_testkit`.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use mamochi_common::kafka;
use mamochi_common::Settings;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;

pub use mamochi_testkit::settings::{load as settings, unique};

/// The stack's state directory, where PID files and mail live.
pub fn state_dir() -> PathBuf {
    std::env::var_os("MAMOCHI_STATE_DIR")
        .map(PathBuf::from)
        .expect("MAMOCHI_STATE_DIR is set by `make test` (deploy/local/run-tests)")
}

/// Where [`consume_values`] stops.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// After exactly this many records.
    Count(usize),
    /// Once every partition has been read up to its end as it was when the
    /// consumer started: a record missing from the answer was not there, a
    /// record read twice shows up twice, with no quiet spell waited out.
    End,
}

/// Consumes `topic` in `group`, storing each record's offset after it has been
/// "processed" (decoded and recorded), until `until`, or panics after
/// `give_up_after`. Commits the stored offsets and leaves the group before
/// returning.
pub async fn consume_values(
    settings: &Settings,
    group: &str,
    topic: &str,
    until: Until,
    give_up_after: Duration,
) -> Vec<u64> {
    let consumer = kafka::consumer(&settings.kafka, group, "test").expect("consumer");
    // The partitions with records left to read (from the group's committed
    // offset, or the partition's start) and the offset to read them up to.
    let mut remaining: Vec<(i32, i64)> = Vec::new();
    if let Until::End = until {
        let timeout = Duration::from_secs(10);
        let metadata = consumer.fetch_metadata(Some(topic), timeout).expect("metadata");
        let mut list = rdkafka::TopicPartitionList::new();
        let partitions: Vec<i32> =
            metadata.topics().iter().flat_map(|topic| topic.partitions()).map(|partition| partition.id()).collect();
        for partition in &partitions {
            list.add_partition(topic, *partition);
        }
        let committed = consumer.committed_offsets(list, timeout).expect("committed offsets");
        for partition in partitions {
            let (low, high) = consumer.fetch_watermarks(topic, partition, timeout).expect("watermarks");
            let next = match committed.find_partition(topic, partition).map(|element| element.offset()) {
                Some(rdkafka::Offset::Offset(offset)) => offset,
                _ => low,
            };
            if next < high {
                remaining.push((partition, high));
            }
        }
    }
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut values = Vec::new();
    let mut stream = consumer.stream();
    let give_up = tokio::time::Instant::now() + give_up_after;
    loop {
        let done = match until {
            Until::Count(expected) => values.len() >= expected,
            Until::End => remaining.is_empty(),
        };
        if done {
            break;
        }
        match tokio::time::timeout_at(give_up, stream.next()).await {
            Ok(Some(Ok(message))) => {
                let payload = message.payload().expect("payload");
                let text = std::str::from_utf8(payload).expect("utf-8");
                values.push(text.parse::<u64>().expect("a number"));
                consumer.store_offset_from_message(&message).expect("store offset");
                let (partition, offset) = (message.partition(), message.offset());
                remaining.retain(|(p, end)| !(*p == partition && offset + 1 >= *end));
            }
            // librdkafka reports transient trouble (a dead broker, say) as
            // errors on the stream and recovers by itself; the deadline bounds it.
            Ok(Some(Err(error))) => eprintln!("consumer reported (continuing): {error}"),
            Ok(None) | Err(_) => {
                panic!("{until:?} not reached on {topic} within {give_up_after:?}: {} read", values.len())
            }
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
    mamochi_testkit::settings::isolated(&[
        (mamochi_approval::FORMS_GROUP, mamochi_events::topics::REGISTRATIONS.name()),
        (mamochi_approval::REVIEWS_GROUP, mamochi_events::topics::REGISTRATION_REVIEWS.name()),
        (mamochi_distributor::service::SALES_GROUP, mamochi_events::topics::SALES.name()),
        (mamochi_distributor::service::STOCK_GROUP, mamochi_events::topics::STOCK.name()),
        (mamochi_distributor::service::TRACKING_GROUP, mamochi_events::topics::CART_TRACKING.name()),
        (mamochi_accounting::GROUP, mamochi_events::topics::SALES.name()),
        (mamochi_notifier::service::GROUP, mamochi_events::topics::EMAIL_REQUESTS.name()),
    ])
}

/// The demo's scenario, shortened: two vendors (one paid), a sale every
/// 0.2–0.4 s at $1.800 and a fifteen-second week at 2016× platform time,
/// mail read from the stack's sink (`MAMOCHI_MAIL_DIR`, set by `stack env`).
pub fn short_journey() -> mamochi::demo::DemoArgs {
    let mail_dir = std::env::var_os("MAMOCHI_MAIL_DIR").expect("MAMOCHI_MAIL_DIR is set by `stack env`").into();
    mamochi::demo::DemoArgs {
        vendors: 2,
        paid: 1,
        sell_every_min: 0.2,
        sell_every_max: 0.4,
        price_clp: JOURNEY_PRICE_CLP,
        week_minutes: 0.25,
        time_scale: 2016.0,
        mail_dir,
    }
}

/// The price of a serving in [`short_journey`].
pub const JOURNEY_PRICE_CLP: i64 = 1_800;

/// What every [`short_journey`] must end with: both vendors approved (one
/// paid), each sold past a stock-out, was restocked, and received a weekly
/// statement whose count and earnings equal what it sold.
pub fn assert_journey(reports: &[mamochi::demo::VendorReport]) {
    assert_eq!(reports.len(), 2);
    assert_eq!(reports.iter().filter(|report| report.paid).count(), 1);
    for report in reports {
        assert!(report.sales >= 10, "{} sold past one stock-out: {report:?}", report.name);
        assert!(report.restocks >= 1, "at least one restock email: {report:?}");
        assert_eq!(report.statement_sales, Some(i64::from(report.sales)), "statement count: {report:?}");
        assert_eq!(
            report.statement_earnings_clp,
            Some(i64::from(report.sales) * JOURNEY_PRICE_CLP),
            "statement earnings: {report:?}"
        );
    }
}
