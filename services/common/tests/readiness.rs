//! Readiness follows group membership on the real broker: a consumer of a
//! fresh group on a fresh topic is not ready until its group assigns it
//! partitions, is ready after, and `mamochi_kafka_assigned_partitions` tracks
//! what it holds as a second member joins and leaves.

use std::ops::AsyncFnMut;
use std::time::Duration;

use mamochi_common::kafka::{self, CommittingConsumer, TopicSpec};
use mamochi_common::kafka_metrics::KafkaMetrics;
use mamochi_common::ops::{self, Ops, Readiness};
use mamochi_common::shutdown::Shutdown;
use mamochi_common::Settings;
use prometheus::Registry;
use rdkafka::consumer::Consumer;

const PARTITIONS: i32 = 3;
const DEADLINE: Duration = Duration::from_secs(60);

/// One consumer process as a service builds it: its own registry, metrics
/// and readiness flag.
struct Member {
    consumer: CommittingConsumer,
    registry: Registry,
    readiness: Readiness,
}

fn member(settings: &Settings, group: &str, topic: &str) -> Member {
    let registry = Registry::new();
    let metrics = KafkaMetrics::new(&registry).expect("metrics");
    let consumer = kafka::measured_consumer(&settings.kafka, group, "readiness-test", &metrics).expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    Member { consumer, registry, readiness: Readiness::default() }
}

/// Polls as a service's loop does (rebalances happen inside polls) until `stop`.
async fn poll_until(consumer: &CommittingConsumer, stop: &Shutdown) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            received = consumer.recv() => {
                if let Err(error) = received {
                    eprintln!("consumer reported (continuing): {error}");
                }
            }
        }
    }
}

/// The gauge's value for `group` in `registry`, if the series exists.
fn assigned(registry: &Registry, group: &str) -> Option<i64> {
    let families = registry.gather();
    let family = families.iter().find(|family| family.name() == "mamochi_kafka_assigned_partitions")?;
    family
        .get_metric()
        .iter()
        .find(|metric| metric.get_label().iter().any(|label| label.name() == "group" && label.value() == group))
        .map(|metric| metric.get_gauge().get_value() as i64)
}

/// Waits until `condition` holds, failing with `what` at the deadline.
async fn wait_until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn readyz(client: &reqwest::Client, port: u16) -> u16 {
    let response = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.expect("readyz answers");
    response.status().as_u16()
}

#[tokio::test]
async fn ready_only_after_the_first_assignment_and_the_gauge_follows_the_group() {
    // Arrange: a fresh topic and group, one member serving its /readyz.
    let settings = Settings::load(None).expect("settings load from the environment");
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let topic = format!("test.readiness.{suffix}");
    let group = format!("test.readiness.{suffix}");
    let admin = kafka::admin(&settings.kafka).expect("admin");
    let spec = TopicSpec { name: &topic, partitions: PARTITIONS, replication: None, config: vec![] };
    kafka::ensure_topics(&admin, &[spec]).await.expect("topic created");
    let first = member(&settings, &group, &topic);
    let ops = Ops { service: "readiness-test", readiness: first.readiness.clone(), registry: first.registry.clone() };
    let (server, port) = ops::serve("127.0.0.1:0", ops).expect("ops server binds");
    let server_handle = server.handle();
    let server_task = tokio::spawn(server);
    let client = reqwest::Client::new();

    // Act: the member's loop runs with readiness tied to its assignment,
    // but polls only once released; then a second member joins and leaves.
    let stop_first = Shutdown::new();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let first_loop = async {
        if released.await.is_ok() {
            poll_until(&first.consumer, &stop_first).await;
        }
    };
    let scenario = async {
        // `join!` below polls `ready_when_assigned` before this block, so its
        // wait is running; the consumer has not polled, so it cannot have
        // been assigned anything.
        assert_eq!(readyz(&client, port).await, 503, "not ready before the first assignment");
        assert!(!first.consumer.context().has_been_assigned());
        assert_eq!(assigned(&first.registry, &group), None);
        release.send(()).expect("the loop waits for its release");

        // Every answer is checked: readiness raised before the assignment
        // fails the check right after the first 200.
        wait_until("/readyz says ready", async || readyz(&client, port).await == 200).await;
        assert!(first.consumer.context().has_been_assigned(), "ready only once assigned");
        assert_eq!(assigned(&first.registry, &group), Some(i64::from(PARTITIONS)), "alone, it holds every partition");

        let second = member(&settings, &group, &topic);
        let stop_second = Shutdown::new();
        let split = async {
            wait_until("both members hold partitions", async || {
                let (a, b) = (assigned(&first.registry, &group), assigned(&second.registry, &group));
                matches!((a, b), (Some(a), Some(b)) if a > 0 && b > 0 && a + b == i64::from(PARTITIONS))
            })
            .await;
            stop_second.cancel();
        };
        let ((), ()) = tokio::join!(poll_until(&second.consumer, &stop_second), split);
        assert!(second.consumer.context().has_been_assigned());
        drop(second);

        wait_until("the first member holds every partition again", async || {
            assigned(&first.registry, &group) == Some(i64::from(PARTITIONS))
        })
        .await;
        stop_first.cancel();
    };
    let consumers = [&first.consumer];
    let ((), ()) =
        tokio::join!(kafka::ready_when_assigned(Some(&first.readiness), &consumers, &stop_first, first_loop), scenario);

    // Assert: readiness is lowered once the consumer's loop has ended.
    assert_eq!(readyz(&client, port).await, 503, "not ready after the loop ended");
    server_handle.stop(true).await;
    server_task.await.expect("server task").expect("server ran");
}
