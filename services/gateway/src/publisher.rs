//! The gateway's way out to Kafka: one idempotent `acks=all` producer and one
//! codec per process, shared by every request. A publish returns only once
//! Kafka acknowledged the record, so a 2xx answer means the event is durable.

use std::sync::Arc;
use std::time::Instant;

use mamochi_events::codec::EventCodec;
use mamochi_events::publish::{publish, Delivered, PublishError};
use mamochi_events::topics::Topic;
use mamochi_events::AvroSchemaSource;
use rdkafka::producer::FutureProducer;
use serde::Serialize;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct Publisher {
    pub producer: FutureProducer,
    pub codec: Arc<EventCodec>,
    pub metrics: Metrics,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl Publisher {
    /// Publishes `value` under `key`; `partition` overrides the partitioner.
    #[tracing::instrument(skip_all, fields(topic = topic.name(), partition, offset))]
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
        let result = publish(&self.producer, &self.codec, topic, key, value, partition).await;
        let labels = [topic.name()];
        match &result {
            Ok(delivered) => {
                self.metrics.produced.with_label_values(&labels).inc();
                self.metrics.produce_seconds.with_label_values(&labels).observe(started.elapsed().as_secs_f64());
                tracing::Span::current().record("partition", delivered.partition).record("offset", delivered.offset);
            }
            Err(_) => self.metrics.produce_failures.with_label_values(&labels).inc(),
        }
        result
    }
}
