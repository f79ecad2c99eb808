//! `mamochi demo`: proves the stack end to end by sending readable events
//! through Kafka and printing each one as the consumer group receives it.
//!
//! Records are keyed by vendor, so each vendor's events land on one partition
//! and arrive in the order they were sent; the printout shows the partition,
//! the offset and the time from send to receipt.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use mamochi_common::kafka::{self, TopicSpec};
use mamochi_common::Settings;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use serde::{Deserialize, Serialize};

/// Topic the stack demo writes to; it holds demo events only.
const DEMO_TOPIC: TopicSpec<'static> = TopicSpec {
    name: "mamochi.demo.pings",
    partitions: 3,
    replication: None,
    config: Vec::new(),
};

/// Scenario knobs.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Number of vendors sending events.
    #[arg(long, default_value_t = 5)]
    vendors: u32,
    /// Events each vendor sends.
    #[arg(long, default_value_t = 4)]
    events_per_vendor: u32,
    /// Pause between two rounds of events.
    #[arg(long, default_value_t = 200)]
    interval_ms: u64,
}

/// The demo's event body, JSON so the console consumer shows it readably.
#[derive(Debug, Serialize, Deserialize)]
struct Ping {
    run: i64,
    vendor: String,
    seq: u32,
    sent_at_ms: i64,
}

pub async fn run(settings: &Settings, args: DemoArgs) -> anyhow::Result<()> {
    let admin = kafka::admin(&settings.kafka).context("while creating the admin client")?;
    kafka::ensure_topics(&admin, std::slice::from_ref(&DEMO_TOPIC))
        .await
        .context("while creating the demo topic")?;

    // A fresh group reads the topic from the start; the run id lets it skip
    // the events of earlier runs.
    let run = chrono_millis();
    let group = format!("mamochi-demo-{run}");
    let consumer = kafka::consumer(&settings.kafka, &group, "demo").context("while creating the consumer")?;
    consumer.subscribe(&[DEMO_TOPIC.name]).context("while subscribing")?;
    let producer = kafka::producer(&settings.kafka, "demo").context("while creating the producer")?;

    println!("MAMOCHI stack demo: {} vendors x {} events on topic {}", args.vendors, args.events_per_vendor, DEMO_TOPIC.name);
    println!("{:<10} {:>4} {:>9} {:>7} {:>10}", "vendor", "seq", "partition", "offset", "latency");

    let expected = args.vendors * args.events_per_vendor;
    let sender = {
        let producer = producer.clone();
        tokio::spawn(async move {
            for seq in 1..=args.events_per_vendor {
                for vendor in 1..=args.vendors {
                    let ping = Ping { run, vendor: format!("vendor-{vendor}"), seq, sent_at_ms: chrono_millis() };
                    let body = serde_json::to_vec(&ping)?;
                    producer
                        .send(FutureRecord::to(DEMO_TOPIC.name).key(&ping.vendor).payload(&body), Timeout::After(Duration::from_secs(30)))
                        .await
                        .map_err(|(error, _)| error)
                        .context("while producing a demo event")?;
                }
                tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
            }
            anyhow::Ok(())
        })
    };

    let mut received = 0;
    let mut last_seq: HashMap<String, u32> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stream = consumer.stream();
    while received < expected {
        let next = tokio::time::timeout_at(deadline.into(), stream.next()).await;
        let Ok(Some(message)) = next else { bail!("only {received} of {expected} demo events arrived within 60 s") };
        let message = message.context("while consuming")?;
        let Some(payload) = message.payload() else { continue };
        let ping: Ping = serde_json::from_slice(payload).context("while decoding a demo event")?;
        if ping.run != run {
            consumer.store_offset_from_message(&message).context("while storing the offset")?;
            continue;
        }
        if let Some(previous) = last_seq.insert(ping.vendor.clone(), ping.seq) {
            if previous >= ping.seq {
                bail!("{} events out of order: {previous} then {}", ping.vendor, ping.seq);
            }
        }
        let latency = chrono_millis() - ping.sent_at_ms;
        println!("{:<10} {:>4} {:>9} {:>7} {:>7} ms", ping.vendor, ping.seq, message.partition(), message.offset(), latency);
        consumer.store_offset_from_message(&message).context("while storing the offset")?;
        received += 1;
    }
    sender.await.context("producer task")??;
    kafka::commit_stored_offsets(&consumer);
    println!("all {expected} events arrived, each vendor's in order");
    Ok(())
}

fn chrono_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default()
}
