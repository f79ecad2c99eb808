//! Helpers for the event-contract tests: the running stack's settings, unique
//! names, and a raw reader for a topic.
#![allow(dead_code)]

use std::time::Duration;

use futures::StreamExt;
use mamochi_common::{kafka, Settings};
use rdkafka::consumer::Consumer;
use rdkafka::message::OwnedMessage;

pub fn settings() -> Settings {
    Settings::load(None).expect("settings load from the environment")
}

pub fn unique(prefix: &str) -> String {
    format!("test.{prefix}.{}", uuid::Uuid::new_v4().simple())
}

/// Reads records of `topic` from the beginning until `filter` has accepted
/// `expected` of them or `timeout` passes.
pub async fn read_records(
    settings: &Settings,
    topic: &str,
    expected: usize,
    timeout: Duration,
    filter: impl Fn(&OwnedMessage) -> bool,
) -> Vec<OwnedMessage> {
    let consumer = kafka::consumer(&settings.kafka, &unique("reader"), "test").expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut stream = consumer.stream();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut found = Vec::new();
    while found.len() < expected {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(message))) => {
                let owned = message.detach();
                if filter(&owned) {
                    found.push(owned);
                }
            }
            Ok(Some(Err(error))) => eprintln!("consumer reported (continuing): {error}"),
            Ok(None) | Err(_) => break,
        }
    }
    found
}
