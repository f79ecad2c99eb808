//! The broker's own limit with the platform's producer: an rdkafka
//! `FutureProducer` built from `mamochi_common::kafka::producer_config`
//! (idempotent, `acks=all`, the platform's linger and compression) writes
//! SaleRecorded records in Confluent's wire format, encoded by the
//! platform's codec, to a bench topic with as many partitions as the sales
//! topic, with as many records in flight as librdkafka's queue holds.
//!
//! Records are encoded before the clock starts: this measures Kafka, not
//! Avro. Each record's latency runs from its enqueue to its acknowledgement,
//! observed by a task woken by librdkafka's delivery callback, so a busy
//! enqueue loop does not delay the reading.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use mamochi_common::kafka::{self, TopicSpec};
use mamochi_common::Settings;
use mamochi_events::codec::EventCodec;
use mamochi_events::{topics, AvroSchemaSource, PaymentMethod, SaleRecorded, VendorKey};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::progress::Progress;
use crate::results::ProducerRun;
use crate::stats::Recorder;

/// The bench's topics: written only by the bench, kept an hour. Not in the
/// platform's catalog on purpose: no service reads them.
pub const RAW_TOPIC: &str = "mamochi.bench.raw-sales";
pub const PERF_TEST_TOPIC: &str = "mamochi.bench.perf-test";

/// Creates the bench topics with the sales topic's partition count.
pub async fn ensure_bench_topics(settings: &Settings) -> anyhow::Result<()> {
    let admin = kafka::admin(&settings.kafka).context("while creating the admin client")?;
    let spec = |name| TopicSpec {
        name,
        partitions: topics::SALES.info.partitions,
        replication: None,
        config: vec![("retention.ms", (60 * 60 * 1000).to_string())],
    };
    kafka::ensure_topics(&admin, &[spec(RAW_TOPIC), spec(PERF_TEST_TOPIC)])
        .await
        .context("while creating the bench topics")
}

/// A sale like the gateway's, for a vendor out of `vendors` distinct ones
/// (so keys spread over every partition as real traffic does).
pub fn sample_sale(index: u64, vendors: &[uuid::Uuid]) -> (VendorKey, SaleRecorded) {
    let vendor_id = vendors[(index % vendors.len().max(1) as u64) as usize];
    let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_else(Utc::now);
    let sale = SaleRecorded {
        sale_id: uuid::Uuid::new_v4(),
        vendor_id,
        quantity: 1,
        unit_price_clp: 1_500,
        total_clp: 1_500,
        payment_method: PaymentMethod::Cash,
        occurred_at: now,
        recorded_at: now,
        location: None,
    };
    (VendorKey { vendor_id }, sale)
}

/// Encodes `count` sales for `topic` (its registry subjects get the sales schemas).
pub async fn encode_sales(
    codec: &EventCodec,
    topic: &str,
    count: u64,
    vendors: &[uuid::Uuid],
) -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut records = Vec::with_capacity(count as usize);
    for index in 0..count {
        let (key, sale) = sample_sale(index, vendors);
        let key = codec
            .encode_with_schema(topic, true, VendorKey::SCHEMA.text, &key)
            .await
            .context("while encoding a key")?;
        let value = codec
            .encode_with_schema(topic, false, SaleRecorded::SCHEMA.text, &sale)
            .await
            .context("while encoding a sale")?;
        records.push((key, value));
    }
    Ok(records)
}

/// Writes `records` to `topic` as fast as the producer takes them.
pub async fn produce_all(
    producer: &FutureProducer,
    topic: &str,
    records: &[(Vec<u8>, Vec<u8>)],
    progress: &Progress,
) -> anyhow::Result<ProducerRun> {
    produce_each(producer, topic, records, |_| None, progress).await
}

/// As [`produce_all`], record `index` to `partition(index)` when it names
/// one (a laned topic), else to the partitioner's choice by key.
pub async fn produce_each(
    producer: &FutureProducer,
    topic: &str,
    records: &[(Vec<u8>, Vec<u8>)],
    partition: impl Fn(usize) -> Option<i32>,
    progress: &Progress,
) -> anyhow::Result<ProducerRun> {
    let latencies = Arc::new(Mutex::new(Recorder::new()));
    let failed = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicU64::new(0));
    let mut max_in_flight = 0;
    let mut waiters = tokio::task::JoinSet::new();
    let started = Instant::now();
    for (index, (key, value)) in records.iter().enumerate() {
        let mut record = FutureRecord::to(topic).key(key).payload(value);
        if let Some(partition) = partition(index) {
            record = record.partition(partition);
        }
        let delivery = loop {
            match producer.send_result(record) {
                Ok(delivery) => break delivery,
                // The local queue is full: acknowledgements free it; wait a moment.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
                Err((error, _)) => return Err(error).context("while enqueueing a record"),
            }
        };
        let enqueued = Instant::now();
        max_in_flight = max_in_flight.max(in_flight.fetch_add(1, Ordering::Relaxed) + 1);
        let (latencies, failed, in_flight, bar) =
            (latencies.clone(), failed.clone(), in_flight.clone(), progress.clone());
        waiters.spawn(async move {
            let acknowledged = matches!(delivery.await, Ok(Ok(_)));
            let elapsed = enqueued.elapsed();
            in_flight.fetch_sub(1, Ordering::Relaxed);
            if acknowledged {
                latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner).record(elapsed);
            } else {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            bar.inc(1);
        });
    }
    while waiters.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let ack = latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner).summary();
    let (key_bytes, value_bytes) = records.first().map_or((0, 0), |(key, value)| (key.len(), value.len()));
    let count = records.len() as u64;
    Ok(ProducerRun {
        topic: topic.to_string(),
        partitions: topics::SALES.info.partitions,
        records: count,
        failed: failed.load(Ordering::Relaxed),
        key_bytes,
        value_bytes,
        elapsed_s: elapsed,
        records_per_sec: ack.count as f64 / elapsed.max(1e-9),
        mb_per_sec: ack.count as f64 * (key_bytes + value_bytes) as f64 / 1_000_000.0 / elapsed.max(1e-9),
        ack,
        max_in_flight,
    })
}

/// The platform-configured producer run, end to end.
pub async fn platform_producer(
    settings: &Settings,
    codec: &EventCodec,
    count: u64,
    progress: &Progress,
) -> anyhow::Result<ProducerRun> {
    let vendors: Vec<uuid::Uuid> = (0..1_000).map(|_| uuid::Uuid::new_v4()).collect();
    progress.set_message("encoding");
    let records = encode_sales(codec, RAW_TOPIC, count, &vendors).await?;
    let producer: FutureProducer =
        kafka::producer_config(&settings.kafka, "bench-raw").create().context("while creating the producer")?;
    progress.set_message("producing");
    let run = produce_all(&producer, RAW_TOPIC, &records, progress).await?;
    Ok(run)
}
