//! `mamochi dead-letters list|replay`, run as the real binary against the
//! running stack: records parked the way consumers park them (through
//! `DeadLetters::park`) are listed with their reason and source, and a replay
//! puts the same key, value and headers back on their source partition.

mod support;

use std::time::Duration;

use mamochi_common::kafka::{self, TopicSpec};
use mamochi_common::Settings;
use mamochi_events::dead_letter::DeadLetters;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

const SOURCE_PARTITION: i32 = 2;

/// What one `mamochi` run printed.
struct Output {
    stdout: String,
}

async fn mamochi(args: &[&str]) -> Output {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_mamochi"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .await
        .expect("mamochi runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "mamochi {args:?} failed:\n{stdout}\n{stderr}");
    Output { stdout }
}

fn reader(settings: &Settings, topic: &str, partition: i32, offset: i64) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &settings.kafka.bootstrap_servers)
        .set("group.id", support::unique("dlq-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Offset(offset)).expect("partition");
    consumer.assign(&assignment).expect("assign");
    consumer
}

async fn next(consumer: &StreamConsumer) -> BorrowedMessage<'_> {
    tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a record within 30 s")
        .expect("a record")
}

/// The `list` line of the dead letter that came from `source`, as columns.
fn line_of<'a>(listing: &'a str, source: &str) -> Option<Vec<&'a str>> {
    listing.lines().map(|line| line.split_whitespace().collect::<Vec<_>>()).find(|columns| has(columns, source))
}

fn has(columns: &[&str], text: &str) -> bool {
    columns.contains(&text)
}

#[tokio::test]
async fn parked_records_are_listed_with_their_reason_and_source_and_replayed_byte_for_byte() {
    // Arrange: a source topic of this test's own, two records on one of its
    // partitions whose bytes are no valid Avro nor UTF-8, parked by a group.
    let settings = support::settings();
    let admin = kafka::admin(&settings.kafka).expect("admin");
    let topic = support::unique("dlq-source");
    let spec = TopicSpec { name: &topic, partitions: 3, replication: None, config: Vec::new() };
    kafka::ensure_topics(&admin, &mamochi_events::topics::all_specs()).await.expect("catalog topics");
    kafka::ensure_topics(&admin, &[spec]).await.expect("source topic");
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let records: Vec<(Vec<u8>, Vec<u8>)> = (0..2_u8)
        .map(|index| {
            let id = uuid::Uuid::new_v4();
            (id.as_bytes().to_vec(), [&[0x00, 0xff, 0xfe, index][..], id.as_bytes()].concat())
        })
        .collect();
    for (key, value) in &records {
        let headers = OwnedHeaders::new().insert(Header { key: "trace", value: Some(&key[..]) });
        let record =
            FutureRecord::to(&topic).partition(SOURCE_PARTITION).key(&key[..]).payload(&value[..]).headers(headers);
        producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
            .map_err(|(error, _)| error)
            .expect("produced");
    }
    let group = support::unique("dlq-group");
    let dead_letters = DeadLetters::new(producer.clone(), group.clone());
    let source = reader(&settings, &topic, SOURCE_PARTITION, 0);
    let reasons = ["corrupt_body", "handler_rejected"];
    for reason in reasons {
        let message = next(&source).await;
        dead_letters.park(&message, reason, &"the test made it unreadable").await.expect("parked");
    }

    // Act: list them, list the most recent one only, replay the first.
    let listing = mamochi(&["dead-letters", "list", "--topic", &topic]).await.stdout;
    let latest = mamochi(&["dead-letters", "list", "--topic", &topic, "--limit", "1"]).await.stdout;

    // Assert: each shows its reason, source and group, and the error.
    let first_source = format!("{topic}/{SOURCE_PARTITION}@0");
    let second_source = format!("{topic}/{SOURCE_PARTITION}@1");
    let first = line_of(&listing, &first_source).unwrap_or_else(|| panic!("{first_source} listed:\n{listing}"));
    let second = line_of(&listing, &second_source).unwrap_or_else(|| panic!("{second_source} listed:\n{listing}"));
    assert!(has(&first, reasons[0]) && has(&first, &group), "{first:?}");
    assert!(has(&second, reasons[1]) && has(&second, &group), "{second:?}");
    assert!(listing.contains("error: the test made it unreadable"), "{listing}");
    assert!(listing.starts_with("2 dead letters"), "{listing}");
    assert!(line_of(&latest, &second_source).is_some(), "{latest}");
    assert!(line_of(&latest, &first_source).is_none(), "--limit 1 shows only the latest:\n{latest}");

    let dead_letter_offset = first[0];
    let replayed = mamochi(&["dead-letters", "replay", "--offset", dead_letter_offset]).await.stdout;
    let landed = replayed
        .lines()
        .find_map(|line| line.strip_prefix(&format!("replayed dead letter {dead_letter_offset} ")))
        .and_then(|rest| rest.rsplit_once(" to "))
        .map(|(_, at)| at.trim().to_string())
        .unwrap_or_else(|| panic!("replay says where it landed:\n{replayed}"));
    let (landed_partition, landed_offset) = landed
        .strip_prefix(&format!("{topic}/"))
        .and_then(|rest| rest.split_once('@'))
        .map(|(partition, offset)| {
            (partition.parse::<i32>().expect("partition"), offset.parse::<i64>().expect("offset"))
        })
        .unwrap_or_else(|| panic!("landed on the source topic: {landed}"));
    assert_eq!(landed_partition, SOURCE_PARTITION, "back on its source partition");
    assert_eq!(landed_offset, 2, "after the two originals");

    let back = reader(&settings, &topic, landed_partition, landed_offset);
    let message = next(&back).await;
    assert_eq!(message.key(), Some(&records[0].0[..]), "same key bytes");
    assert_eq!(message.payload(), Some(&records[0].1[..]), "same value bytes");
    let headers: Vec<(String, Option<Vec<u8>>)> = message
        .headers()
        .map(|all| all.iter().map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec))).collect())
        .unwrap_or_default();
    assert_eq!(headers, vec![("trace".to_string(), Some(records[0].0.clone()))], "original headers only");
}

#[tokio::test]
async fn replaying_an_offset_that_holds_no_dead_letter_fails_and_produces_nothing() {
    let settings = support::settings();
    let admin = kafka::admin(&settings.kafka).expect("admin");
    kafka::ensure_topics(&admin, &mamochi_events::topics::all_specs()).await.expect("catalog topics");

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_mamochi"))
        .args(["dead-letters", "replay", "--offset", &i64::MAX.to_string()])
        .output()
        .await
        .expect("mamochi runs");

    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).lines().all(|line| !line.starts_with("replayed")));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no dead letter"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
