//! State lives in Kafka: a new instance on the same topic knows everything
//! the old one did, and the topic holds Confluent's own record format.

use std::time::Duration;

use futures::StreamExt;
use mamochi_common::kafka;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use crate::helpers::{delete_topic, settings, spawn_app, spawn_app_on, USER_V1, USER_V2, USER_V3};

const SALE: &str = r#"{"type":"record","name":"Sale","fields":[{"name":"amount","type":"long"}]}"#;
const USER_V4: &str = r#"{"type":"record","name":"User","namespace":"cl.mamochi","fields":[{"name":"id","type":"long"},{"name":"nickname","type":["null","string"],"default":null}]}"#;

#[tokio::test]
async fn a_restarted_registry_knows_everything_the_old_one_did() {
    // Arrange: two subjects, both kinds of config, a soft and a permanent delete.
    let first = spawn_app().await;
    let topic = first.topic.clone();
    assert_eq!(first.register("users", USER_V1).await, 1);
    assert_eq!(first.register("users", USER_V2).await, 2);
    assert_eq!(first.register("users", USER_V3).await, 3);
    assert_eq!(first.register("sales", SALE).await, 4);
    assert_eq!(first.register("sales-copy", USER_V1).await, 1);
    first.put("/config", json!({"compatibility": "FORWARD"})).await.ok();
    first.put("/config/sales", json!({"compatibility": "NONE"})).await.ok();
    first.delete("/subjects/users/versions/2").await.ok();
    first.delete("/subjects/users/versions/3").await.ok();
    first.delete("/subjects/users/versions/3?permanent=true").await.ok();

    // Act: stop it, start a new one on the same topic.
    first.stop_keeping_topic().await;
    let second = spawn_app_on(&topic).await;

    // Assert: subjects, versions, deletions, ids and configs survived.
    assert_eq!(second.get("/subjects").await.ok(), &json!(["sales", "sales-copy", "users"]));
    assert_eq!(second.get("/subjects/users/versions").await.ok(), &json!([1]));
    assert_eq!(second.get("/subjects/users/versions?deleted=true").await.ok(), &json!([1, 2]));
    second.get("/subjects/users/versions/3?deleted=true").await.assert_error(404, 40402);
    assert_eq!(second.get("/subjects/users/versions/1").await.ok()["schema"], USER_V1);
    assert_eq!(
        second.get("/schemas/ids/2").await.ok(),
        &json!({"schema": USER_V2}),
        "soft-deleted: still served by id"
    );
    second.get("/schemas/ids/3").await.assert_error(404, 40403);
    assert_eq!(second.get("/schemas/ids/1/subjects").await.ok(), &json!(["sales-copy", "users"]));
    assert_eq!(second.get("/config").await.ok(), &json!({"compatibilityLevel": "FORWARD"}));
    assert_eq!(second.get("/config/sales").await.ok(), &json!({"compatibilityLevel": "NONE"}));
    second.get("/config/users").await.assert_error(404, 40408);
    // New ids continue after the highest ever used; versions after the soft-deleted one.
    assert_eq!(second.register("users", USER_V4).await, 5);
    assert_eq!(second.get("/subjects/users/versions?deleted=true").await.ok(), &json!([1, 2, 3]));
    assert_eq!(second.register("sales", USER_V1).await, 1, "a known schema keeps its id after a restart");
    second.stop().await;
}

#[tokio::test]
async fn the_topic_holds_confluents_record_format_and_is_compacted() {
    let app = spawn_app().await;
    app.register("users", USER_V1).await;
    app.put("/config", json!({"compatibility": "FULL"})).await.ok();
    app.delete("/subjects/users").await.ok();
    app.delete("/subjects/users?permanent=true").await.ok();
    let topic = app.topic.clone();
    app.stop_keeping_topic().await;

    let records = read_topic(&topic, 4).await;

    let expected = [
        (
            r#"{"keytype":"SCHEMA","subject":"users","version":1,"magic":1}"#,
            Some(format!(r#"{{"subject":"users","version":1,"id":1,"schema":{},"deleted":false}}"#, json!(USER_V1))),
        ),
        (r#"{"keytype":"CONFIG","subject":null,"magic":0}"#, Some(r#"{"compatibilityLevel":"FULL"}"#.to_string())),
        (
            r#"{"keytype":"DELETE_SUBJECT","subject":"users","magic":0}"#,
            Some(r#"{"subject":"users","version":1}"#.to_string()),
        ),
        (r#"{"keytype":"SCHEMA","subject":"users","version":1,"magic":1}"#, None),
    ];
    let expected: Vec<(String, Option<String>)> =
        expected.into_iter().map(|(key, value)| (key.to_string(), value)).collect();
    assert_eq!(records, expected);
    let admin = kafka::admin(&settings(&topic).kafka).expect("admin");
    let described = admin
        .describe_configs(&[rdkafka::admin::ResourceSpecifier::Topic(&topic)], &rdkafka::admin::AdminOptions::new())
        .await
        .expect("describe");
    let config = described.into_iter().next().expect("one resource").expect("its config");
    let policy = config.get("cleanup.policy").and_then(|entry| entry.value.clone());
    assert_eq!(policy.as_deref(), Some("compact"));
    delete_topic(&topic).await;
}

/// The first `count` records of `topic`, as (key, value) text.
async fn read_topic(topic: &str, count: usize) -> Vec<(String, Option<String>)> {
    let settings = settings(topic);
    let consumer: StreamConsumer =
        kafka::consumer_config(&settings.kafka, &format!("test-{}", uuid::Uuid::new_v4()), "test")
            .create()
            .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning).expect("partition");
    consumer.assign(&assignment).expect("assign");
    let text = |bytes: Option<&[u8]>| bytes.map(|bytes| String::from_utf8_lossy(bytes).into_owned());
    let mut records = Vec::new();
    let mut stream = consumer.stream();
    while records.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("records arrive")
            .expect("a stream item")
            .expect("a record");
        records.push((text(message.key()).unwrap_or_default(), text(message.payload())));
    }
    records
}
