//! A transient outage longer than the group's `max.poll.interval.ms`, on the
//! real broker: the shared loop keeps polling while it retries (partitions
//! paused), so the consumer is never evicted — no rebalance after the first
//! assignment, the loop still running — and when the outage ends every
//! record is applied exactly once, in partition order.

use mamochi_testkit as kit;

use std::collections::{BTreeMap, HashSet};
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

/// The poll interval the test sets: librdkafka's floor is the 10 s session
/// timeout.
const MAX_POLL_INTERVAL_MS: u32 = 10_000;
/// How long the handler fails: well past the poll interval.
const OUTAGE: Duration = Duration::from_secs(25);
const PARTITIONS: i32 = 3;
const PER_PARTITION: i32 = 4;

/// Fails every call transiently until the outage ends, then records each
/// record once (by partition, in order).
struct DownThenUp {
    outage_ends: Mutex<Option<Instant>>,
    failures: Mutex<usize>,
    applied: Mutex<BTreeMap<i32, Vec<i32>>>,
}

impl Handler<SaleRecorded> for DownThenUp {
    async fn handle(&self, envelope: Envelope<SaleRecorded>) -> Result<(), HandlerError> {
        let ends = *self.outage_ends.lock().expect("lock").get_or_insert_with(|| Instant::now() + OUTAGE);
        if Instant::now() < ends {
            *self.failures.lock().expect("lock") += 1;
            return Err(HandlerError::Transient(anyhow::anyhow!("connection refused (simulated outage)")));
        }
        self.applied.lock().expect("lock").entry(envelope.partition).or_default().push(envelope.value.quantity);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_poll_interval_evicts_nobody_and_applies_each_record_once() {
    // Arrange: records on three partitions; a consumer whose group evicts
    // it after 10 s without a poll.
    let mut settings = kit::settings::load();
    settings.kafka.max_poll_interval_ms = MAX_POLL_INTERVAL_MS;
    let topic = kit::settings::unique("keepalive");
    let admin = kafka::admin(&settings.kafka).expect("admin");
    kafka::ensure_topics(
        &admin,
        &[TopicSpec { name: &topic, partitions: PARTITIONS, replication: None, config: vec![] }, DEAD_LETTERS.spec()],
    )
    .await
    .expect("topics");
    let codec = Arc::new(EventCodec::new(&settings.registry.url));
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let mut expected: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for partition in 0..PARTITIONS {
        for index in 0..PER_PARTITION {
            let quantity = partition * 100 + index + 1;
            let bytes = codec
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
    let group = kit::settings::unique("keepalive-group");
    let metrics = KafkaMetrics::unexported();
    let runner = Runner {
        codec,
        dead_letters: DeadLetters::new(producer.clone(), &group).measured(&metrics),
        backoff: Backoff { first: Duration::from_millis(100), max: Duration::from_secs(2) },
        metrics: metrics.clone(),
    };
    let consumer = kafka::measured_consumer(&settings.kafka, &group, "test", &metrics).expect("consumer");
    consumer.subscribe(&[topic.as_str()]).expect("subscribe");
    let handler =
        DownThenUp { outage_ends: Mutex::new(None), failures: Mutex::new(0), applied: Mutex::new(BTreeMap::new()) };
    let total = (PARTITIONS * PER_PARTITION) as usize;
    let rebalances = |kind: &str| metrics.rebalances.with_label_values(&[group.as_str(), kind]).get();

    // Act: run the loop through the outage until every record is applied.
    let shutdown = Shutdown::new();
    let run = runner.run::<SaleRecorded, _>(&consumer, &handler, &shutdown);
    tokio::pin!(run);
    let deadline = Instant::now() + OUTAGE + Duration::from_secs(60);
    // The coordinator's view of the group once it first settles: the member
    // this consumer joined as.
    let mut joined_as: Option<Vec<String>> = None;
    let applied_all = loop {
        if joined_as.is_none() && rebalances("assign") >= 1 {
            joined_as = stable_members(&settings, &group);
        }
        let applied = handler.applied.lock().expect("lock").values().map(Vec::len).sum::<usize>();
        if applied >= total && joined_as.is_some() {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        tokio::select! {
            result = &mut run => panic!("the loop ended by itself during the outage: {result:?}"),
            () = tokio::time::sleep(Duration::from_millis(100)) => {},
        }
    };
    // The coordinator's view now, not a quiet spell: a consumer that missed
    // its poll interval leaves the group at once (librdkafka enforces it),
    // so after an eviction the group would be empty, rebalancing, or hold a
    // member that joined again under a new id.
    let members_after = stable_members(&settings, &group);
    let (assigns, revokes, errors) = (rebalances("assign"), rebalances("revoke"), rebalances("error"));
    shutdown.cancel();
    run.await.expect("the loop stops cleanly");

    // Assert
    assert!(applied_all, "every record applied after the outage");
    let failures = *handler.failures.lock().expect("lock");
    eprintln!(
        "outage of {OUTAGE:?} under a {MAX_POLL_INTERVAL_MS} ms poll interval: {failures} failed attempts, \
         {assigns} assignment(s), {revokes} revocation(s), {} records applied",
        handler.applied.lock().expect("lock").values().map(Vec::len).sum::<usize>()
    );
    assert!(failures > 5, "the handler really failed through the outage ({failures} failures)");
    assert!(joined_as.as_ref().is_some_and(|members| members.len() == 1), "one member at first: {joined_as:?}");
    assert_eq!(members_after, joined_as, "the same single member, stable, after the outage");
    assert_eq!(assigns, 1, "one assignment: the group never evicted the consumer");
    assert_eq!(revokes, 0, "no partition was taken away during the outage");
    assert_eq!(errors, 0);
    let applied = handler.applied.lock().expect("lock").clone();
    assert_eq!(applied, expected, "each record once, in partition order");
    let unique: HashSet<i32> = applied.values().flatten().copied().collect();
    assert_eq!(unique.len(), total);
}

/// The member ids of `group` as its coordinator reports them, if the group
/// is stable.
fn stable_members(settings: &mamochi_common::Settings, group: &str) -> Option<Vec<String>> {
    let probe: rdkafka::consumer::BaseConsumer =
        kafka::consumer_config(&settings.kafka, "test-probe", "test-probe").create().expect("probe");
    let list = probe.fetch_group_list(Some(group), Duration::from_secs(10)).expect("group list");
    let found = list.groups().iter().find(|found| found.name() == group)?;
    (found.state() == "Stable").then(|| found.members().iter().map(|member| member.id().to_string()).collect())
}
