//! Produces the outbox's records to Kafka: all of a round's records are
//! handed to the producer in order, then their acknowledgements (`acks=all`)
//! are awaited together.
//!
//! Guarantee: [`OutboxPublisher::publish_in_order`] returns `Ok` only when Kafka
//! acknowledged every record. Records are enqueued synchronously in the
//! given order and the producer is idempotent, so two records for the same
//! partition (the same vendor) land in that order even when librdkafka
//! retries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mamochi_common::kafka_metrics::KafkaMetrics;
use mamochi_events::codec::EventCodec;
use mamochi_events::publish::PublishError;
use mamochi_events::topics::{CART_ALARMS, CART_STOCK, EMAIL_REQUESTS, STOCK};
use mamochi_events::{MessageKey, VendorKey};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::outbox::OutboxRecord;

/// How long to let the producer's queue empty before enqueueing again.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(10);

/// The process's one producer and codec, measured.
#[derive(Clone)]
pub struct OutboxPublisher {
    pub producer: FutureProducer,
    pub codec: Arc<EventCodec>,
    pub metrics: KafkaMetrics,
}

impl std::fmt::Debug for OutboxPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxPublisher").finish_non_exhaustive()
    }
}

/// One encoded record and the topic it goes to.
struct Encoded {
    topic: &'static str,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl OutboxPublisher {
    /// Produces `records` and waits until Kafka acknowledged all of them.
    pub async fn publish_in_order(&self, records: &[OutboxRecord]) -> Result<(), PublishError> {
        let started = Instant::now();
        let mut encoded = Vec::with_capacity(records.len());
        for record in records {
            encoded.push(self.encode(record).await?);
        }
        let mut deliveries: Vec<(&'static str, DeliveryFuture)> = Vec::with_capacity(encoded.len());
        for record in &encoded {
            deliveries.push((record.topic, self.enqueue(record).await?));
        }
        let mut first_error = None;
        for (topic, outcome) in futures::future::join_all(deliveries.into_iter().map(|(topic, delivery)| async move {
            let outcome = match delivery.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((error, _))) => Err(error),
                Err(_) => Err(KafkaError::Canceled),
            };
            (topic, outcome)
        }))
        .await
        {
            match outcome {
                Ok(()) => {
                    self.metrics.produced.with_label_values(&[topic]).inc();
                    self.metrics.produce_seconds.with_label_values(&[topic]).observe(started.elapsed().as_secs_f64());
                }
                Err(error) => {
                    self.metrics.produce_failures.with_label_values(&[topic]).inc();
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(PublishError::Kafka(error)),
            None => Ok(()),
        }
    }

    async fn encode(&self, record: &OutboxRecord) -> Result<Encoded, PublishError> {
        let (topic, (key, value)) = match record {
            OutboxRecord::Stock(event) => {
                let key = VendorKey { vendor_id: event.vendor_id };
                (STOCK.name(), self.codec.encode(&STOCK, &key, event).await?)
            }
            OutboxRecord::Email(request) => {
                let key = MessageKey { message_id: request.message_id };
                (EMAIL_REQUESTS.name(), self.codec.encode(&EMAIL_REQUESTS, &key, request).await?)
            }
            OutboxRecord::Level(level) => {
                let key = VendorKey { vendor_id: level.vendor_id };
                (CART_STOCK.name(), self.codec.encode(&CART_STOCK, &key, level).await?)
            }
            OutboxRecord::Alarm(alarm) => {
                let key = VendorKey { vendor_id: alarm.vendor_id };
                (CART_ALARMS.name(), self.codec.encode(&CART_ALARMS, &key, alarm).await?)
            }
        };
        Ok(Encoded { topic, key, value })
    }

    /// Hands one record to the producer, waiting while its queue is full.
    async fn enqueue(&self, record: &Encoded) -> Result<DeliveryFuture, KafkaError> {
        loop {
            let future_record = FutureRecord::to(record.topic).key(&record.key).payload(&record.value);
            match self.producer.send_result(future_record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(QUEUE_FULL_PAUSE).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }
}
