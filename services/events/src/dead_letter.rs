//! Dead letters: records a consumer can never process (undecodable, or
//! refused for good under the error policy in [`crate::failure`]) are
//! copied, bytes untouched, to the dead-letter topic with headers saying why
//! and where they came from; then the consumer stores the original offset
//! and moves on. `mamochi dead-letters` lists and replays them.
//!
//! Guarantee: the dead letter is acknowledged by Kafka (`acks=all`) before
//! [`DeadLetters::park`] returns, so storing the source offset afterwards
//! never loses the record. A crash in between parks it twice; readers of the
//! dead-letter topic see the source coordinates and can tell.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use mamochi_common::kafka_metrics::KafkaMetrics;

use crate::topics::DEAD_LETTERS;

/// Header names written on every dead letter.
pub mod headers {
    pub const REASON: &str = "mamochi.dlq.reason";
    pub const ERROR: &str = "mamochi.dlq.error";
    pub const SOURCE_TOPIC: &str = "mamochi.dlq.source.topic";
    pub const SOURCE_PARTITION: &str = "mamochi.dlq.source.partition";
    pub const SOURCE_OFFSET: &str = "mamochi.dlq.source.offset";
    pub const CONSUMER_GROUP: &str = "mamochi.dlq.consumer.group";
    pub const FAILED_AT_MS: &str = "mamochi.dlq.failed.at.ms";
}

/// Writes dead letters on behalf of one consumer group.
#[derive(Clone)]
pub struct DeadLetters {
    producer: FutureProducer,
    group: String,
    metrics: Option<KafkaMetrics>,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters").field("group", &self.group).finish_non_exhaustive()
    }
}

impl DeadLetters {
    pub fn new(producer: FutureProducer, group: impl Into<String>) -> Self {
        Self { producer, group: group.into(), metrics: None }
    }

    /// The same writer, counting what it parks in `metrics`.
    pub fn measured(mut self, metrics: &KafkaMetrics) -> Self {
        self.metrics = Some(metrics.clone());
        self
    }

    /// Copies `message` to the dead-letter topic and waits for the
    /// acknowledgement. `reason` is a short stable label (`corrupt_body`,
    /// `handler_rejected`, …); `error` the full explanation.
    pub async fn park(
        &self,
        message: &BorrowedMessage<'_>,
        reason: &str,
        error: &(dyn std::fmt::Display + Sync),
    ) -> Result<(), KafkaError> {
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let failed_at = chrono::Utc::now().timestamp_millis().to_string();
        let error_text = error.to_string();
        let mut record_headers = OwnedHeaders::new()
            .insert(Header { key: headers::REASON, value: Some(reason) })
            .insert(Header { key: headers::ERROR, value: Some(error_text.as_str()) })
            .insert(Header { key: headers::SOURCE_TOPIC, value: Some(message.topic()) })
            .insert(Header { key: headers::SOURCE_PARTITION, value: Some(partition.as_str()) })
            .insert(Header { key: headers::SOURCE_OFFSET, value: Some(offset.as_str()) })
            .insert(Header { key: headers::CONSUMER_GROUP, value: Some(self.group.as_str()) })
            .insert(Header { key: headers::FAILED_AT_MS, value: Some(failed_at.as_str()) });
        if let Some(original) = message.headers() {
            for header in original.iter() {
                record_headers = record_headers.insert(header);
            }
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(DEAD_LETTERS.name).headers(record_headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        self.producer.send(record, Timeout::After(Duration::from_secs(60))).await.map_err(|(error, _)| error)?;
        if let Some(metrics) = &self.metrics {
            metrics.dead_letters.with_label_values(&[message.topic(), reason]).inc();
        }
        tracing::warn!(
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            reason,
            %error,
            "record parked in the dead-letter topic"
        );
        Ok(())
    }
}
