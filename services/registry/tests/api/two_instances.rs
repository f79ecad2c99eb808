//! Several instances on one state topic: exactly one is the elected writer,
//! the others forward writes to it, ids never collide, every instance serves
//! every id, a stopped writer is replaced, and a deposed writer is fenced.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mamochi_registry::errors::ApiError;
use mamochi_registry::kafka_store::KafkaStore;
use mamochi_registry::schema::AvroSchema;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::helpers::{delete_topic, schema_body, settings, spawn_app_on, unique_topic, TestApp};

/// How long an election may take: a stopped writer leaves the group at once,
/// so this is one rebalance plus fencing, with room for a loaded machine.
const ELECTION_DEADLINE: Duration = Duration::from_secs(30);

/// A schema of its own for each `n` (distinct record names, so distinct ids).
fn schema(tag: &str, n: usize) -> String {
    format!(
        r#"{{"type":"record","name":"R{n}","namespace":"cl.mamochi.{tag}","fields":[{{"name":"n","type":"long"}}]}}"#
    )
}

/// This instance's `mamochi_registry_is_writer` gauge.
async fn is_writer(app: &TestApp) -> bool {
    let text = app.get("/metrics").await.text;
    let value = text.lines().find_map(|line| line.strip_prefix("mamochi_registry_is_writer "));
    value.expect("the writer gauge is exported").trim() == "1"
}

/// Waits until exactly one of `apps` says it is the writer; returns its index.
async fn the_writer(apps: &[&TestApp]) -> usize {
    let deadline = tokio::time::Instant::now() + ELECTION_DEADLINE;
    loop {
        let mut writers = Vec::new();
        for (index, app) in apps.iter().enumerate() {
            if is_writer(app).await {
                writers.push(index);
            }
        }
        if let [writer] = writers[..] {
            return writer;
        }
        assert!(tokio::time::Instant::now() < deadline, "no single writer elected in time: {writers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Registers schema `n` on `app`, then reads it back from the same instance
/// at once (read-your-writes, also when the write was forwarded).
async fn register_and_read_back(app: &TestApp, tag: &str, n: usize) -> (usize, u64) {
    let text = schema(tag, n);
    let answer = app.post(&format!("/subjects/{tag}-{n}/versions"), schema_body(&text)).await;
    let id = answer.ok()["id"].as_u64().expect("an id");
    let read = app.get(&format!("/schemas/ids/{id}")).await;
    assert_eq!(read.ok()["schema"], text.as_str(), "schema {n} read back from the instance that registered it");
    (n, id)
}

/// Registers `count` new schemas, alternating between `apps`, 16 at a time.
async fn register_alternately(apps: &[&TestApp], tag: &str, range: std::ops::Range<usize>) -> HashMap<usize, u64> {
    futures::stream::iter(range)
        .map(|n| register_and_read_back(apps[n % apps.len()], tag, n))
        .buffer_unordered(16)
        .collect()
        .await
}

/// Asserts ids are distinct, and every app serves every id with its schema.
async fn assert_served_everywhere(apps: &[&TestApp], tag: &str, ids: &HashMap<usize, u64>) {
    let distinct: HashSet<u64> = ids.values().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "every distinct schema got its own id: {ids:?}");
    for app in apps {
        for (n, id) in ids {
            let answer = app.get(&format!("/schemas/ids/{id}")).await;
            assert_eq!(answer.ok()["schema"], schema(tag, *n).as_str(), "id {id} on {}", app.address);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_one_writer_and_never_collide_on_ids() {
    let topic = unique_topic();
    let a = spawn_app_on(&topic).await;
    let b = spawn_app_on(&topic).await;

    let ids = register_alternately(&[&a, &b], "pair", 0..80).await;

    assert_served_everywhere(&[&a, &b], "pair", &ids).await;
    let writers = usize::from(is_writer(&a).await) + usize::from(is_writer(&b).await);
    assert_eq!(writers, 1, "exactly one instance is the writer");
    a.stop_keeping_topic().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_the_writer_stops_the_other_instance_takes_over() {
    let topic = unique_topic();
    let first = spawn_app_on(&topic).await;
    let second = spawn_app_on(&topic).await;
    let before = register_alternately(&[&first, &second], "takeover", 0..20).await;
    let writer = the_writer(&[&first, &second]).await;
    let (writer, survivor) = if writer == 0 { (first, second) } else { (second, first) };

    writer.stop_keeping_topic().await;

    assert_eq!(the_writer(&[&survivor]).await, 0, "the survivor is elected");
    let after = register_alternately(&[&survivor], "takeover", 20..40).await;
    let all: HashMap<usize, u64> = before.into_iter().chain(after).collect();
    assert_served_everywhere(&[&survivor], "takeover", &all).await;
    survivor.stop().await;
}

/// A deposed writer that has not noticed (a paused process) cannot append:
/// the next writer's fencing makes its write fail, and nothing of it reaches
/// the log. The election is driven by hand so both believe they hold office.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deposed_writer_is_fenced_and_writes_nothing() {
    let topic = unique_topic();
    let settings = settings(&topic);
    let stop = CancellationToken::new();
    let open = |url: &str| KafkaStore::open(&settings, url.to_string(), stop.clone());
    let (old, old_reader) = open("http://127.0.0.1:1").await.expect("the first store opens");
    let (new, new_reader) = open("http://127.0.0.1:2").await.expect("the second store opens");
    let (old, new) = (Arc::new(old), Arc::new(new));
    let (old_holds, old_holds_rx) = watch::channel(true);
    let (new_holds, new_holds_rx) = watch::channel(false);
    let old_term = tokio::spawn(old.clone().serve_term(old_holds_rx, stop.clone()));
    let new_term = tokio::spawn(new.clone().serve_term(new_holds_rx, stop.clone()));
    // Each schema under a subject of its own, so compatibility never refuses one.
    let register = |store: Arc<KafkaStore>, n: usize| async move {
        let schema = AvroSchema::parse(&schema("fence", n)).expect("a valid schema");
        store.write(|state| state.plan_register(&format!("fenced-{n}"), &schema)).await
    };
    wait_until(|| old.is_writer()).await;
    assert_eq!(register(old.clone(), 1).await.expect("the writer writes"), 1);

    // The new writer takes office while the old one still believes it holds it.
    new_holds.send_replace(true);
    wait_until(|| new.is_writer()).await;
    let zombie = register(old.clone(), 2).await;
    // Now the old instance learns it was revoked (so it does not retry office).
    old_holds.send_replace(false);
    let successor = register(new.clone(), 3).await;

    assert!(matches!(zombie, Err(ApiError::NoWriter)), "the deposed writer's write fails: {zombie:?}");
    assert_eq!(successor.expect("the new writer writes"), 2, "the next id is free: the zombie wrote nothing");
    assert!(!old.is_writer(), "the fenced writer stepped down");
    old.wait_until_applied_offset(new.applied_offset()).await.expect("the old reader catches up");
    let served = |store: &KafkaStore| store.read(|state| state.schema_count());
    assert_eq!((served(&old), served(&new)), (2, 2), "both see the two committed schemas only");
    stop.cancel();
    for task in [old_term, new_term, old_reader, new_reader] {
        task.await.expect("the store's tasks stop");
    }
    delete_topic(&topic).await;
}

async fn wait_until(condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + ELECTION_DEADLINE;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "condition not reached in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
