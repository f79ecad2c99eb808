//! A sale whose produce fails ambiguously — the broker may have written it,
//! but the acknowledgement never reached the gateway — and is retried with
//! the same Idempotency-Key is counted once, by accounting and by the
//! distributor.
//!
//! The ambiguity is real: every Kafka broker of the stack is paused with
//! SIGSTOP while the gateway has a produce request in flight on an open
//! connection, so the request sits in the broker's socket; the gateway's
//! message timeout (set short here) expires, it answers 503 and releases the
//! claim; the brokers are resumed with SIGCONT and read the request, so the
//! first attempt usually lands after all. The client's retry then records the
//! same sale id again. Built only with `--features fault-tests`; `make test`
//! runs it on the three-node stack after the main suite.

mod support;

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures::StreamExt;
use mamochi_common::db::{self, PgPool};
use mamochi_common::kafka;
use mamochi_common::shutdown::Shutdown;
use mamochi_events::codec::EventCodec;
use mamochi_events::{topics, SaleRecorded};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use uuid::Uuid;

/// Resumes the paused brokers however the test ends.
struct Paused(Vec<i32>);

impl Paused {
    fn every_broker() -> Self {
        let run = support::state_dir().join("run");
        let mut pids = Vec::new();
        for entry in std::fs::read_dir(&run).expect("the stack's run directory") {
            let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
            if name.starts_with("kafka-") && name.ends_with(".pid") {
                let pid = std::fs::read_to_string(run.join(&name)).expect("PID file");
                pids.push(pid.trim().parse().expect("a PID"));
            }
        }
        // A broker an earlier fault test killed is left out.
        pids.retain(|pid| kill(Pid::from_raw(*pid), Signal::SIGSTOP).is_ok());
        assert!(!pids.is_empty(), "no live Kafka broker in {}", run.display());
        Self(pids)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGCONT);
        }
    }
}

/// A member with a cart of `stock` servings, as approval would write them.
async fn create_vendor(pool: &PgPool, stock: i32) -> (Uuid, String) {
    let member_id = Uuid::new_v4();
    let registration_id = Uuid::new_v4();
    let api_key = format!("mamochi_{}", Uuid::new_v4().simple());
    let digest = mamochi_rules::digest::sha256_hex(&api_key);
    let tag = member_id.simple().to_string();
    let mut conn = pool.get().await.expect("connection");
    diesel::sql_query(
        "INSERT INTO registrations (registration_id, full_name, rut, email, phone, comuna, cart_plate, paid, \
         tracking_token_sha256, status, submitted_at, decided_at) \
         VALUES ($1, 'Juan Soto', $2, $3, '+56912345678', 'Ñuñoa', 'BCDF12', false, $4, 'approved', now(), now())",
    )
    .bind::<diesel::sql_types::Uuid, _>(registration_id)
    .bind::<diesel::sql_types::Text, _>(format!("rut-{tag}"))
    .bind::<diesel::sql_types::Text, _>(format!("juan.{tag}@example.cl"))
    .bind::<diesel::sql_types::Text, _>("00".repeat(32))
    .execute(&mut conn)
    .await
    .expect("registration row");
    diesel::sql_query(
        "INSERT INTO members (member_id, registration_id, full_name, rut, email, phone, comuna, cart_plate, paid, \
         api_key_id, api_key_sha256) \
         VALUES ($1, $2, 'Juan Soto', $3, $4, '+56912345678', 'Ñuñoa', 'BCDF12', false, $5, $6)",
    )
    .bind::<diesel::sql_types::Uuid, _>(member_id)
    .bind::<diesel::sql_types::Uuid, _>(registration_id)
    .bind::<diesel::sql_types::Text, _>(format!("rut-{tag}"))
    .bind::<diesel::sql_types::Text, _>(format!("juan.{tag}@example.cl"))
    .bind::<diesel::sql_types::Text, _>(format!("key-{tag}"))
    .bind::<diesel::sql_types::Text, _>(digest)
    .execute(&mut conn)
    .await
    .expect("member row");
    diesel::sql_query("INSERT INTO carts (vendor_id, stock) VALUES ($1, $2)")
        .bind::<diesel::sql_types::Uuid, _>(member_id)
        .bind::<diesel::sql_types::Integer, _>(stock)
        .execute(&mut conn)
        .await
        .expect("cart row");
    (member_id, api_key)
}

async fn sell(client: &reqwest::Client, base: &str, api_key: &str, key: &str, quantity: i32) -> (u16, Value) {
    let response = client
        .post(format!("{base}/v1/sales"))
        .bearer_auth(api_key)
        .header("Idempotency-Key", key)
        .json(&json!({"quantity": quantity, "unit_price_clp": 1_000, "payment_method": "cash"}))
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// (sales counted, earnings) by accounting and the cart's stock by the distributor.
async fn effects(pool: &PgPool, vendor: Uuid) -> (i64, i64, Option<i32>) {
    let mut conn = pool.get().await.expect("connection");
    let (count, earnings): (i64, i64) = diesel::sql_query(
        "SELECT COALESCE(SUM(sales_count), 0)::bigint AS count, COALESCE(SUM(earnings_clp), 0)::bigint AS earnings \
         FROM weekly_sales WHERE vendor_id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(vendor)
    .get_result::<Totals>(&mut conn)
    .await
    .map(|row| (row.count, row.earnings))
    .expect("accounting totals");
    let stock = mamochi_common::schema::carts::table
        .find(vendor)
        .select(mamochi_common::schema::carts::stock)
        .first::<i32>(&mut conn)
        .await
        .optional()
        .expect("cart");
    (count, earnings, stock)
}

#[derive(QueryableByName)]
struct Totals {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    earnings: i64,
}

/// How many records on the sales topic, from `start` on, carry `sale_id`.
async fn copies_on_the_topic(settings: &mamochi_common::Settings, start: &[i64], sale_id: Uuid, marker: Uuid) -> usize {
    let codec = EventCodec::new(&settings.registry.url);
    let consumer: StreamConsumer =
        kafka::consumer_config(&settings.kafka, &support::unique("ambiguous-reader"), "test")
            .create()
            .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for (partition, offset) in start.iter().enumerate() {
        assignment
            .add_partition_offset(
                topics::SALES.name(),
                i32::try_from(partition).expect("partition"),
                Offset::Offset(*offset),
            )
            .expect("offset");
    }
    consumer.assign(&assignment).expect("assign");
    let mut copies = 0;
    let mut stream = consumer.stream();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, stream.next()).await {
        let message = message.expect("record");
        let sale: SaleRecorded = codec.decode(message.payload()).await.expect("a sale");
        if sale.sale_id == sale_id {
            copies += 1;
        }
        if sale.sale_id == marker {
            // The marker was produced after both attempts on the same partition.
            return copies;
        }
    }
    panic!("the marker sale never appeared on the topic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_retried_after_an_ambiguous_produce_failure_is_counted_once() {
    // Arrange: gateway (short message timeout), accounting and distributor.
    let mut settings = support::isolated_settings();
    settings.gateway.listen = "127.0.0.1:0".into();
    settings.gateway.ops_listen = "127.0.0.1:0".into();
    settings.kafka.message_timeout_ms = 4_000;
    settings.accounting.ops_listen = "127.0.0.1:0".into();
    settings.distributor.ops_listen = "127.0.0.1:0".into();
    let pool = db::pool(&settings.database).expect("pool");
    let (vendor, api_key) = create_vendor(&pool, 50).await;
    let shutdown = Shutdown::new();
    let gateway = mamochi_gateway::Application::build(&settings).await.expect("gateway builds");
    let base = format!("http://127.0.0.1:{}", gateway.port());
    let ops = format!("http://127.0.0.1:{}", gateway.ops_port());
    tokio::spawn(gateway.run_until_stopped(shutdown.clone()));
    let services = [mamochi::run::Service::Accounting, mamochi::run::Service::Distributor];
    {
        let (settings, shutdown) = (settings.clone(), shutdown.clone());
        tokio::spawn(async move { mamochi::run::run_services(&settings, &services, shutdown).await });
    }
    let client = reqwest::Client::new();
    let ready_by = Instant::now() + Duration::from_secs(60);
    while client.get(format!("{ops}/readyz")).send().await.map(|r| r.status().as_u16()).ok() != Some(200) {
        assert!(Instant::now() < ready_by, "gateway not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A first sale warms the producer's connections, so the next request is
    // written onto an open socket.
    let (status, _) = sell(&client, &base, &api_key, &format!("warm-{vendor}"), 1).await;
    assert_eq!(status, 201);
    let probe: rdkafka::consumer::BaseConsumer =
        kafka::consumer_config(&settings.kafka, &support::unique("ambiguous-probe"), "test")
            .create()
            .expect("consumer");
    let start: Vec<i64> = (0..topics::SALES.info.partitions)
        .map(|partition| {
            probe.fetch_watermarks(topics::SALES.name(), partition, Duration::from_secs(10)).expect("watermarks").1
        })
        .collect();
    let key = format!("ambiguous-{vendor}");

    // Act: the first attempt while every broker is paused, the retry after.
    let first = {
        let _paused = Paused::every_broker();
        sell(&client, &base, &api_key, &key, 3).await
    };
    let retry = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = sell(&client, &base, &api_key, &key, 3).await;
            if answer.0 == 201 || Instant::now() > deadline {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let (status, marker) = sell(&client, &base, &api_key, &format!("marker-{vendor}"), 1).await;
    assert_eq!(status, 201, "{marker:?}");

    // Assert
    assert_eq!(first.0, 503, "the paused broker never acknowledged: {:?}", first.1);
    assert_eq!(retry.0, 201, "{:?}", retry.1);
    let sale_id: Uuid = retry.1["sale_id"].as_str().and_then(|id| id.parse().ok()).expect("sale id");
    let marker_id: Uuid = marker["sale_id"].as_str().and_then(|id| id.parse().ok()).expect("marker id");
    let copies = copies_on_the_topic(&settings, &start, sale_id, marker_id).await;
    eprintln!("the retried sale is on the topic {copies} time(s)");
    assert!((1..=2).contains(&copies), "{copies} copies");
    // Three sales were made: warm-up (1 serving, $1.000), the retried one
    // (3, $3.000) and the marker (1, $1.000), in that order on the vendor's
    // partition. Counted once, the totals pass through (3, $5.000) and the
    // stock through 45; counted twice, the third count is $7.000 and the
    // stock goes 49, 46, 43, 42, never 45. So waiting for three counts and a
    // stock at or below 45 stops exactly where a double count would show.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (count, earnings, stock) = loop {
        let effects = effects(&pool, vendor).await;
        if effects.0 >= 3 && effects.2.is_some_and(|stock| stock <= 45) {
            break effects;
        }
        assert!(Instant::now() < deadline, "not applied in time: {effects:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((count, earnings), (3, 5_000), "accounting counted the retried sale once");
    assert_eq!(stock, Some(45), "the distributor took its servings once");
    shutdown.cancel();
}
