//! Producing one typed event: encode key and value for the topic from the
//! catalog, send, and wait for Kafka's acknowledgement (`acks=all`).
//!
//! Returning only after the acknowledgement is what lets callers order their
//! steps safely (publish, then mark published; publish, then commit).

use std::sync::Arc;
use std::time::{Duration, Instant};

use mamochi_common::kafka_metrics::KafkaMetrics;

use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde::Serialize;

use crate::codec::{EncodeError, EventCodec};
use crate::topics::Topic;
use crate::AvroSchemaSource;

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("could not encode the event: {0}")]
    Encode(#[from] EncodeError),
    #[error("Kafka did not acknowledge the event: {0}")]
    Kafka(#[from] KafkaError),
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// How long a send waits for room in the producer's local queue by default.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(60);

/// Publishes `value` under `key` on `topic`; `partition` overrides the
/// partitioner (the paid registration lane uses it).
pub async fn publish<K, V>(
    producer: &FutureProducer,
    codec: &EventCodec,
    topic: &Topic<K, V>,
    key: &K,
    value: &V,
    partition: Option<i32>,
) -> Result<Delivered, PublishError>
where
    K: AvroSchemaSource + Serialize,
    V: AvroSchemaSource + Serialize,
{
    publish_within(producer, codec, topic, key, value, partition, QUEUE_TIMEOUT).await
}

/// [`publish`], waiting at most `queue_timeout` for room in the producer's
/// local queue (then `QueueFull`); the acknowledgement itself is bounded by
/// the producer's `message.timeout.ms`.
pub async fn publish_within<K, V>(
    producer: &FutureProducer,
    codec: &EventCodec,
    topic: &Topic<K, V>,
    key: &K,
    value: &V,
    partition: Option<i32>,
    queue_timeout: Duration,
) -> Result<Delivered, PublishError>
where
    K: AvroSchemaSource + Serialize,
    V: AvroSchemaSource + Serialize,
{
    let (key_bytes, value_bytes) = codec.encode(topic, key, value).await?;
    let mut record = FutureRecord::to(topic.name()).key(&key_bytes).payload(&value_bytes);
    if let Some(partition) = partition {
        record = record.partition(partition);
    }
    let delivery = producer.send(record, Timeout::After(queue_timeout)).await.map_err(|(error, _)| error)?;
    Ok(Delivered { partition: delivery.partition, offset: delivery.offset })
}

/// A service's way out to Kafka: its one producer and codec, and the metrics
/// every publish is counted in. Cheap to clone; clones share all three.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    codec: Arc<EventCodec>,
    metrics: KafkaMetrics,
    queue_timeout: Duration,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl Publisher {
    pub fn new(producer: FutureProducer, codec: Arc<EventCodec>, metrics: KafkaMetrics) -> Self {
        Self { producer, codec, metrics, queue_timeout: QUEUE_TIMEOUT }
    }

    /// The same publisher, waiting at most `queue_timeout` for room in the
    /// producer's local queue: a request path answers "busy" rather than
    /// wait out a full queue.
    pub fn with_queue_timeout(mut self, queue_timeout: Duration) -> Self {
        self.queue_timeout = queue_timeout;
        self
    }

    /// The producer, for writers outside the catalog (dead letters).
    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// The codec, shared with the service's consumers.
    pub fn codec(&self) -> &Arc<EventCodec> {
        &self.codec
    }

    /// [`publish`], counted and timed by topic.
    pub async fn send<K, V>(
        &self,
        topic: &Topic<K, V>,
        key: &K,
        value: &V,
        partition: Option<i32>,
    ) -> Result<Delivered, PublishError>
    where
        K: AvroSchemaSource + Serialize,
        V: AvroSchemaSource + Serialize,
    {
        let started = Instant::now();
        let result =
            publish_within(&self.producer, &self.codec, topic, key, value, partition, self.queue_timeout).await;
        let labels = [topic.name()];
        match &result {
            Ok(_) => {
                self.metrics.produced.with_label_values(&labels).inc();
                self.metrics.produce_seconds.with_label_values(&labels).observe(started.elapsed().as_secs_f64());
            }
            Err(_) => self.metrics.produce_failures.with_label_values(&labels).inc(),
        }
        result
    }
}
