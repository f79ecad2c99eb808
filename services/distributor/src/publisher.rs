//! Produces the distributor's derived records and waits for Kafka's
//! acknowledgement (`acks=all`), so a handler that publishes inside its open
//! database transaction commits only once every derived record is durable.

use mamochi_events::publish::{PublishError, Publisher as KafkaPublisher};
use mamochi_events::topics::{EMAIL_REQUESTS, STOCK};
use mamochi_events::{EmailRequested, MessageKey, StockEvent, VendorKey};

/// The process's one producer and codec, measured.
#[derive(Debug, Clone)]
pub struct Publisher {
    pub kafka: KafkaPublisher,
}

impl Publisher {
    /// A stock event, keyed by its vendor.
    pub async fn stock(&self, event: &StockEvent) -> Result<(), PublishError> {
        let key = VendorKey { vendor_id: event.vendor_id };
        self.kafka.send(&STOCK, &key, event, None).await.map(drop)
    }

    /// An email request, keyed by its message id.
    pub async fn email(&self, request: &EmailRequested) -> Result<(), PublishError> {
        let key = MessageKey { message_id: request.message_id };
        self.kafka.send(&EMAIL_REQUESTS, &key, request, None).await.map(drop)
    }
}
