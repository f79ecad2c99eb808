//! Broker failure on the three-node stack (`stack up --kafka-nodes 3`): while
//! a producer writes and the cluster serves, the leader of a partition is
//! killed with SIGKILL. The producer carries on through the leader election,
//! and every record it saw acknowledged is consumed exactly once.
//!
//! Built only with `--features fault-tests`; `make test` runs it after the
//! main suite, on a three-node cluster with replication factor 3 and
//! `min.insync.replicas=2`.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mamochi_common::kafka::{self, TopicSpec};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rdkafka::producer::{FutureRecord, Producer};
use support::Until;

const RECORDS: u64 = 20_000;
const KILL_AFTER_ACKED: usize = 4_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_partition_leader_loses_no_acknowledged_record() {
    // Arrange: a replicated topic on a three-node cluster.
    let settings = support::settings();
    let topic = support::unique("failover");
    let admin = kafka::admin(&settings.kafka).expect("admin");
    kafka::ensure_topics(&admin, &[TopicSpec { name: &topic, partitions: 6, replication: Some(3), config: vec![] }])
        .await
        .expect("topic created");
    let producer = kafka::producer(&settings.kafka, "failover-test").expect("producer");
    // A topic just created may be announced before its partitions have
    // leaders: ask again until all six do.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (brokers, victim) = loop {
        let metadata = producer.client().fetch_metadata(Some(&topic), Duration::from_secs(10)).expect("metadata");
        let leaders: Vec<i32> = metadata
            .topics()
            .first()
            .map(|topic| topic.partitions().iter().map(|partition| partition.leader()).collect())
            .unwrap_or_default();
        if leaders.len() == 6 && leaders.iter().all(|leader| *leader >= 0) {
            break (metadata.brokers().len(), leaders[0]);
        }
        assert!(std::time::Instant::now() < deadline, "the new topic's partitions never all had leaders: {leaders:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(brokers, 3, "this test needs the three-node stack");
    let victim_pid_file = support::state_dir().join("run").join(format!("kafka-{victim}.pid"));
    let victim_pid: i32 =
        std::fs::read_to_string(&victim_pid_file).expect("victim's PID file").trim().parse().expect("a PID");

    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let failed = Arc::new(AtomicUsize::new(0));
    let mut deliveries = Vec::new();
    let mut sent_before_kill = None;

    // Act: produce steadily; once enough records are acknowledged, kill the
    // leader of partition 0 and keep producing.
    for value in 0..RECORDS {
        let payload = value.to_string();
        let key = format!("vendor-{}", value % 31);
        let delivery = loop {
            match producer.send_result(FutureRecord::to(&topic).key(&key).payload(&payload)) {
                Ok(delivery) => break delivery,
                Err((error, _)) => {
                    // Local queue full while the cluster elects a new leader: wait.
                    assert!(matches!(error, rdkafka::error::KafkaError::MessageProduction(_)), "{error}");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        let (acked_sink, failed_count) = (acked.clone(), failed.clone());
        deliveries.push(tokio::spawn(async move {
            match delivery.await {
                Ok(Ok(_)) => acked_sink.lock().expect("lock").push(value),
                _ => {
                    failed_count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        if sent_before_kill.is_none() && acked.lock().expect("lock").len() >= KILL_AFTER_ACKED {
            kill(Pid::from_raw(victim_pid), Signal::SIGKILL).expect("SIGKILL the partition leader");
            println!("killed broker {victim} (pid {victim_pid}) after sending {value} records");
            sent_before_kill = Some(value);
        }
        if value % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for delivery in deliveries {
        delivery.await.expect("delivery task");
    }
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));
    let failed = failed.load(Ordering::Relaxed);
    let killed_at = sent_before_kill.expect("the broker was killed mid-stream");
    println!("acknowledged {} records, {failed} reported failed", acked.len());

    // Assert: the broker is gone, the producer carried on past the kill, and
    // every acknowledged record is in the topic exactly once.
    assert!(kill(Pid::from_raw(victim_pid), None).is_err(), "the victim broker is dead");
    assert!(acked.iter().any(|&value| value > killed_at + 1_000), "records sent after the kill were acknowledged");
    let group = support::unique("failover-reader");
    let consumed = support::consume_values(&settings, &group, &topic, Until::End, Duration::from_secs(120)).await;
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for value in consumed {
        *counts.entry(value).or_default() += 1;
    }
    eprintln!(
        "consumed {} distinct records: {} acknowledged ones missing, {} read more than once",
        counts.len(),
        acked.iter().filter(|value| !counts.contains_key(value)).count(),
        counts.values().filter(|&&count| count > 1).count()
    );
    let lost: Vec<_> = acked.iter().filter(|value| !counts.contains_key(value)).take(10).collect();
    assert!(lost.is_empty(), "acknowledged records lost, e.g. {lost:?}");
    let duplicated: Vec<_> = counts.iter().filter(|(_, &count)| count > 1).take(10).collect();
    assert!(duplicated.is_empty(), "records consumed more than once, e.g. {duplicated:?}");
}
