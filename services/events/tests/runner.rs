//! The shared consumer loop on the real broker: transient handler failures
//! are retried on the same record without skipping ahead, a rejected record is
//! parked, and after shutdown a restarted consumer resumes with nothing re-read.

use mamochi_testkit as kit;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use mamochi_common::kafka::{self, TopicSpec};
use mamochi_common::kafka_metrics::KafkaMetrics;
use mamochi_common::shutdown::Shutdown;
use mamochi_events::codec::EventCodec;
use mamochi_events::dead_letter::{headers, DeadLetters};
use mamochi_events::runner::{Backoff, Envelope, Handler, HandlerError, Runner};
use mamochi_events::topics::{DEAD_LETTERS, SALES};
use mamochi_events::{PaymentMethod, SaleRecorded};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;

/// Records quantities in order; fails quantity 2 twice, rejects quantity 99.
#[derive(Default)]
struct FlakyLedger {
    seen: Mutex<Vec<i32>>,
    attempts: Mutex<HashMap<i32, usize>>,
}

impl Handler<SaleRecorded> for FlakyLedger {
    async fn handle(&self, envelope: Envelope<SaleRecorded>) -> Result<(), HandlerError> {
        let quantity = envelope.value.quantity;
        let attempt = {
            let mut attempts = self.attempts.lock().expect("lock");
            let count = attempts.entry(quantity).or_default();
            *count += 1;
            *count
        };
        if quantity == 2 && attempt <= 2 {
            return Err(HandlerError::Transient(anyhow::anyhow!("database unavailable (attempt {attempt})")));
        }
        if quantity == 99 {
            return Err(HandlerError::Rejected("quantity 99 is not a real sale".into()));
        }
        self.seen.lock().expect("lock").push(quantity);
        Ok(())
    }
}

fn sale(quantity: i32) -> SaleRecorded {
    SaleRecorded {
        sale_id: uuid::Uuid::new_v4(),
        vendor_id: uuid::Uuid::new_v4(),
        quantity,
        unit_price_clp: 1_000,
        total_clp: i64::from(quantity) * 1_000,
        payment_method: PaymentMethod::Cash,
        occurred_at: Utc::now(),
        recorded_at: Utc::now(),
        location: None,
    }
}

async fn run_until(
    runner: &Runner,
    settings: &mamochi_common::Settings,
    group: &str,
    topic: &str,
    ledger: &FlakyLedger,
    done: impl Fn() -> bool,
) {
    let reached = AtomicBool::new(false);
    let consumer = kafka::consumer(&settings.kafka, group, "test").expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let shutdown = Shutdown::new();
    let stopper = shutdown.clone();
    let run = runner.run::<SaleRecorded, _>(&consumer, ledger, &shutdown);
    let watch = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !done() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        reached.store(done(), Ordering::Relaxed);
        stopper.cancel();
    };
    let (result, ()) = tokio::join!(run, watch);
    result.expect("runner stops cleanly");
    assert!(reached.load(Ordering::Relaxed), "the consumer did not get there within 30 s");
}

/// Writes a sale of `quantity` to the test's one-partition topic.
async fn produce(producer: &rdkafka::producer::FutureProducer, codec: &EventCodec, topic: &str, quantity: i32) {
    let bytes = codec
        .encode_with_schema(topic, false, SALES.info.value.expect("schema").text, sale(quantity))
        .await
        .expect("encodes");
    producer
        .send(FutureRecord::<[u8], [u8]>::to(topic).payload(&bytes), Timeout::After(Duration::from_secs(30)))
        .await
        .map_err(|(error, _)| error)
        .expect("acknowledged");
}

#[tokio::test]
async fn the_loop_retries_transient_failures_parks_rejections_and_resumes_after_restart() {
    // Arrange
    let settings = kit::settings::load();
    let topic = kit::settings::unique("runner");
    let admin = kafka::admin(&settings.kafka).expect("admin");
    kafka::ensure_topics(
        &admin,
        &[TopicSpec { name: &topic, partitions: 1, replication: None, config: vec![] }, DEAD_LETTERS.spec()],
    )
    .await
    .expect("topics");
    let codec = Arc::new(EventCodec::new(&settings.registry.url));
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    for quantity in [1, 2, 3, 99, 5] {
        produce(&producer, &codec, &topic, quantity).await;
    }
    let group = kit::settings::unique("runner-group");
    let metrics = KafkaMetrics::unexported();
    let runner = Runner {
        codec,
        dead_letters: DeadLetters::new(producer.clone(), &group).measured(&metrics),
        backoff: Backoff { first: Duration::from_millis(10), max: Duration::from_millis(50) },
        metrics: metrics.clone(),
    };

    // Act: run until the four good sales are in and stop; write one more
    // sale (quantity 7) and restart until it is read. The topic has one
    // partition, so a record read again would come before it.
    let ledger = FlakyLedger::default();
    run_until(&runner, &settings, &group, &topic, &ledger, || ledger.seen.lock().expect("lock").len() == 4).await;
    produce(&producer, &runner.codec, &topic, 7).await;
    let restarted = FlakyLedger::default();
    run_until(&runner, &settings, &group, &topic, &restarted, || restarted.seen.lock().expect("lock").contains(&7))
        .await;

    // Assert
    assert_eq!(
        *ledger.seen.lock().expect("lock"),
        vec![1, 2, 3, 5],
        "in order, nothing skipped, rejected one left out"
    );
    assert_eq!(ledger.attempts.lock().expect("lock")[&2], 3, "two transient failures, then success on the same record");
    assert_eq!(*restarted.seen.lock().expect("lock"), vec![7], "after shutdown nothing is read again");
    let letters = kit::records::read_records(&settings, DEAD_LETTERS.name, 1, Duration::from_secs(30), |message| {
        message
            .headers()
            .is_some_and(|h| h.iter().any(|x| x.key == headers::SOURCE_TOPIC && x.value == Some(topic.as_bytes())))
    })
    .await;
    assert_eq!(letters.len(), 1);
    let reason = letters[0].headers().and_then(|h| h.iter().find(|x| x.key == headers::REASON)).and_then(|x| x.value);
    assert_eq!(reason, Some(b"handler_rejected".as_slice()));
    assert_eq!(metrics.consumed.with_label_values(&[topic.as_str()]).get(), 6, "each record counted once, retries not");
    assert_eq!(metrics.handle_seconds.with_label_values(&[topic.as_str()]).get_sample_count(), 6);
    assert_eq!(metrics.dead_letters.with_label_values(&[topic.as_str(), "handler_rejected"]).get(), 1);
}
