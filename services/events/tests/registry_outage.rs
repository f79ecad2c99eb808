//! The schema registry unreachable while a consumer has records to decode, on
//! the real broker and registry: the shared loop treats "registry
//! unavailable" as transient, so nothing is parked in the dead letters and
//! no record is skipped; when the registry answers again every record is
//! applied exactly once, in partition order.
//!
//! The consumer reaches the registry through a TCP forwarder this test runs
//! on a port of its own: closed during the outage (connections refused, as
//! when the registry is down), then forwarding to the stack's registry. The
//! shared registry itself is never stopped.

use mamochi_testkit as kit;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown as SocketShutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use mamochi_common::kafka::{self, TopicSpec};
use mamochi_common::kafka_metrics::KafkaMetrics;
use mamochi_common::shutdown::Shutdown;
use mamochi_events::codec::EventCodec;
use mamochi_events::dead_letter::DeadLetters;
use mamochi_events::runner::{Backoff, Envelope, Handler, HandlerError, Runner};
use mamochi_events::topics::{DEAD_LETTERS, SALES};
use mamochi_events::{PaymentMethod, SaleRecorded};
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use tokio::time::Instant;

/// How long the registry stays unreachable once the consumer has a record.
const OUTAGE: Duration = Duration::from_secs(8);
const PARTITIONS: i32 = 3;
const PER_PARTITION: i32 = 5;
/// Every reason a record can be parked for: the decode failures'
/// (`DecodeError::reason`) and a handler's refusal.
const PARK_REASONS: [&str; 8] = [
    "missing_payload",
    "too_short",
    "wrong_magic_byte",
    "unknown_schema_id",
    "corrupt_body",
    "registry_unavailable",
    "invalid_reader_schema",
    "handler_rejected",
];

/// Records each sale once, by partition, in the order handled.
#[derive(Default)]
struct Applied(Mutex<BTreeMap<i32, Vec<i32>>>);

impl Applied {
    fn count(&self) -> usize {
        self.0.lock().expect("lock").values().map(Vec::len).sum()
    }
}

impl Handler<SaleRecorded> for Applied {
    async fn handle(&self, envelope: Envelope<SaleRecorded>) -> Result<(), HandlerError> {
        self.0.lock().expect("lock").entry(envelope.partition).or_default().push(envelope.value.quantity);
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

/// Binds `port` and forwards every connection to `upstream`, on threads that
/// end with the test process.
fn forward(port: u16, upstream: String) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the forwarder binds its port");
    std::thread::spawn(move || {
        for inbound in listener.incoming().flatten() {
            let Ok(outbound) = TcpStream::connect(&upstream) else { continue };
            let (Ok(inbound_copy), Ok(outbound_copy)) = (inbound.try_clone(), outbound.try_clone()) else { continue };
            std::thread::spawn(move || pipe(inbound, outbound));
            std::thread::spawn(move || pipe(outbound_copy, inbound_copy));
        }
    });
}

/// Copies `from` to `to` until `from` ends, then ends `to`'s writing side.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 16 * 1024];
    while let Ok(read) = from.read(&mut buffer) {
        if read == 0 || to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(SocketShutdown::Write);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_registry_unreachable_nothing_is_parked_and_every_record_is_applied_once_after() {
    // Arrange: records encoded through the real registry on three
    // partitions; a consumer whose registry URL is a port nothing listens on.
    let settings = kit::settings::load();
    let upstream = settings.registry.url.trim_start_matches("http://").trim_end_matches('/').to_string();
    assert!(!upstream.contains(['/', '@']), "a plain host:port registry URL: {}", settings.registry.url);
    let topic = kit::settings::unique("registry-outage");
    let admin = kafka::admin(&settings.kafka).expect("admin");
    kafka::ensure_topics(
        &admin,
        &[TopicSpec { name: &topic, partitions: PARTITIONS, replication: None, config: vec![] }, DEAD_LETTERS.spec()],
    )
    .await
    .expect("topics");
    let producer_codec = EventCodec::new(&settings.registry.url);
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let mut expected: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for partition in 0..PARTITIONS {
        for index in 0..PER_PARTITION {
            let quantity = partition * 100 + index + 1;
            let bytes = producer_codec
                .encode_with_schema(&topic, false, SALES.info.value.expect("schema").text, sale(quantity))
                .await
                .expect("encodes");
            producer
                .send(
                    FutureRecord::<[u8], [u8]>::to(&topic).partition(partition).payload(&bytes),
                    Timeout::After(Duration::from_secs(30)),
                )
                .await
                .map_err(|(error, _)| error)
                .expect("acknowledged");
            expected.entry(partition).or_default().push(quantity);
        }
    }
    let port = mamochi_common::ports::unused_loopback_port().expect("a free loopback port");
    let group = kit::settings::unique("registry-outage-group");
    let metrics = KafkaMetrics::unexported();
    let runner = Runner {
        codec: Arc::new(EventCodec::new(&format!("http://127.0.0.1:{port}"))),
        dead_letters: DeadLetters::new(producer.clone(), &group).measured(&metrics),
        backoff: Backoff { first: Duration::from_millis(100), max: Duration::from_secs(1) },
        metrics: metrics.clone(),
    };
    let consumer = kafka::measured_consumer(&settings.kafka, &group, "test", &metrics).expect("consumer");
    consumer.subscribe(&[topic.as_str()]).expect("subscribe");
    let handler = Applied::default();
    let total = (PARTITIONS * PER_PARTITION) as usize;
    let consumed = || metrics.consumed.with_label_values(&[topic.as_str()]).get();
    let parked = || -> u64 {
        PARK_REASONS.iter().map(|reason| metrics.dead_letters.with_label_values(&[topic.as_str(), reason]).get()).sum()
    };

    // Act: the loop takes its first record while the registry is
    // unreachable; the outage lasts OUTAGE from then; then it answers again.
    let shutdown = Shutdown::new();
    let run = runner.run::<SaleRecorded, _>(&consumer, &handler, &shutdown);
    tokio::pin!(run);
    let deadline = Instant::now() + Duration::from_secs(60);
    while consumed() == 0 {
        assert!(Instant::now() < deadline, "the consumer never received a record");
        tokio::select! {
            result = &mut run => panic!("the loop ended by itself: {result:?}"),
            () = tokio::time::sleep(Duration::from_millis(100)) => {},
        }
    }
    let outage_ends = Instant::now() + OUTAGE;
    // The outage itself, not a wait for something to (not) happen.
    tokio::select! {
        result = &mut run => panic!("the loop ended by itself during the outage: {result:?}"),
        () = tokio::time::sleep_until(outage_ends) => {},
    }
    let during = (handler.count(), consumed(), parked());
    forward(port, upstream);
    let back = Instant::now();
    let deadline = back + Duration::from_secs(60);
    while handler.count() < total && Instant::now() < deadline {
        tokio::select! {
            result = &mut run => panic!("the loop ended by itself: {result:?}"),
            () = tokio::time::sleep(Duration::from_millis(50)) => {},
        }
    }
    let recovered_in = back.elapsed();
    eprintln!(
        "registry unreachable {OUTAGE:?}: {} applied and {} parked meanwhile; all {total} records applied {:.2}s \
         after it answered again",
        during.0,
        during.2,
        recovered_in.as_secs_f64()
    );
    shutdown.cancel();
    run.await.expect("the loop stops cleanly");

    // Assert
    assert_eq!(during.0, 0, "nothing can be decoded while the registry is unreachable");
    assert_eq!(during.1, 1, "the loop stayed on its first record: nothing skipped");
    assert_eq!(during.2, 0, "an unreachable registry parks nothing");
    let applied = handler.0.lock().expect("lock").clone();
    assert_eq!(applied, expected, "each record once, in partition order, after the outage");
    assert_eq!(parked(), 0, "nothing parked");
}
