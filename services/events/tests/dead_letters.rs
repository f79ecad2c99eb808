//! Undecodable records go to the dead-letter topic with headers that say why
//! and where they came from, bytes untouched; the consumer moves past them and
//! still processes the good records around them.

use mamochi_testkit as kit;

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use mamochi_common::kafka::{self, TopicSpec};
use mamochi_events::codec::EventCodec;
use mamochi_events::consume::{decode_or_park, Decoded};
use mamochi_events::dead_letter::{headers, DeadLetters};
use mamochi_events::topics::{self, DEAD_LETTERS};
use mamochi_events::{PaymentMethod, SaleRecorded};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;

fn sale() -> SaleRecorded {
    // Avro timestamps carry milliseconds; so do the values we compare.
    let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now");
    SaleRecorded {
        sale_id: uuid::Uuid::new_v4(),
        vendor_id: uuid::Uuid::new_v4(),
        quantity: 1,
        unit_price_clp: 1_200,
        total_clp: 1_200,
        payment_method: PaymentMethod::Cash,
        occurred_at: now,
        recorded_at: now,
        location: None,
    }
}

#[tokio::test]
async fn undecodable_records_are_parked_with_their_reason_and_the_consumer_moves_on() {
    // Arrange: a topic with good records around three kinds of bad ones.
    let settings = kit::settings::load();
    let topic = kit::settings::unique("dlq-source");
    let admin = kafka::admin(&settings.kafka).expect("admin");
    kafka::ensure_topics(
        &admin,
        &[TopicSpec { name: &topic, partitions: 1, replication: None, config: vec![] }, DEAD_LETTERS.spec()],
    )
    .await
    .expect("topics");
    let codec = EventCodec::new(&settings.registry.url);
    let good_before = sale();
    let good_after = sale();
    let encode = |value: SaleRecorded| {
        let codec = &codec;
        let topic = topic.clone();
        async move {
            codec
                .encode_with_schema(&topic, false, topics::SALES.info.value.expect("schema").text, &value)
                .await
                .expect("encodes")
        }
    };
    let good_before_bytes = encode(good_before.clone()).await;
    let good_after_bytes = encode(good_after.clone()).await;
    let mut corrupt_body = good_before_bytes[..5].to_vec();
    corrupt_body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("wrong_magic_byte", b"{\"json\": \"not avro\"}".to_vec()),
        ("unknown_schema_id", vec![0, 0x7f, 0xff, 0xff, 0xf0, 2, 4]),
        ("corrupt_body", corrupt_body),
    ];
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let mut payloads = vec![good_before_bytes];
    payloads.extend(bad.iter().map(|(_, bytes)| bytes.clone()));
    payloads.push(good_after_bytes);
    for payload in &payloads {
        producer
            .send(FutureRecord::<[u8], [u8]>::to(&topic).payload(payload), Timeout::After(Duration::from_secs(30)))
            .await
            .map_err(|(error, _)| error)
            .expect("acknowledged");
    }

    // Act: the consumer runs the shared decode-or-park step over all five.
    let group = kit::settings::unique("dlq-consumer");
    let dead_letters = DeadLetters::new(producer.clone(), &group);
    let consumer = kafka::consumer(&settings.kafka, &group, "test").expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut processed: Vec<SaleRecorded> = Vec::new();
    let mut parked = Vec::new();
    let mut stream = consumer.stream();
    while processed.len() + parked.len() < payloads.len() {
        let message = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("records arrive")
            .expect("stream open")
            .expect("no consumer error");
        match decode_or_park::<SaleRecorded>(&codec, &dead_letters, &message).await.expect("decode step finishes") {
            Decoded::Event(sale) => processed.push(sale),
            Decoded::Parked(error) => parked.push(error.reason()),
        }
        consumer.store_offset_from_message(&message).expect("offset stored");
    }
    drop(stream);
    kafka::commit_stored_offsets(&consumer);

    // Assert: good records processed in order, bad ones parked with reasons,
    // bytes and source coordinates.
    assert_eq!(processed, vec![good_before, good_after]);
    assert_eq!(parked, vec!["wrong_magic_byte", "unknown_schema_id", "corrupt_body"]);
    let letters = kit::records::read_records(&settings, DEAD_LETTERS.name, 3, Duration::from_secs(30), |message| {
        header(message, headers::SOURCE_TOPIC).as_deref() == Some(topic.as_str())
    })
    .await;
    assert_eq!(letters.len(), 3, "three dead letters for this topic");
    let by_reason: HashMap<String, &rdkafka::message::OwnedMessage> =
        letters.iter().map(|message| (header(message, headers::REASON).expect("reason header"), message)).collect();
    for (offset, (reason, bytes)) in bad.iter().enumerate() {
        let letter = by_reason.get(*reason).unwrap_or_else(|| panic!("a dead letter for {reason}"));
        assert_eq!(letter.payload(), Some(bytes.as_slice()), "{reason}: bytes untouched");
        assert_eq!(header(letter, headers::SOURCE_PARTITION).as_deref(), Some("0"));
        assert_eq!(header(letter, headers::SOURCE_OFFSET), Some((offset + 1).to_string()));
        assert_eq!(header(letter, headers::CONSUMER_GROUP).as_deref(), Some(group.as_str()));
        assert!(header(letter, headers::ERROR).is_some_and(|text| !text.is_empty()));
    }
}

fn header(message: &rdkafka::message::OwnedMessage, name: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|header| header.key == name)?
        .value
        .map(|value| String::from_utf8_lossy(value).into_owned())
}
