//! Produces the distributor's derived records and waits for Kafka's
//! acknowledgement (`acks=all`), so a handler that publishes inside its open
//! database transaction commits only once every derived record is durable.

use std::sync::Arc;

use mamochi_events::codec::EventCodec;
use mamochi_events::publish::{publish, PublishError};
use mamochi_events::topics::{EMAIL_REQUESTS, STOCK};
use mamochi_events::{EmailRequested, MessageKey, StockEvent, VendorKey};
use rdkafka::producer::FutureProducer;

/// The process's one producer and codec.
#[derive(Clone)]
pub struct Publisher {
    pub producer: FutureProducer,
    pub codec: Arc<EventCodec>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl Publisher {
    /// A stock event, keyed by its vendor.
    pub async fn stock(&self, event: &StockEvent) -> Result<(), PublishError> {
        let key = VendorKey { vendor_id: event.vendor_id };
        publish(&self.producer, &self.codec, &STOCK, &key, event, None).await.map(drop)
    }

    /// An email request, keyed by its message id.
    pub async fn email(&self, request: &EmailRequested) -> Result<(), PublishError> {
        let key = MessageKey { message_id: request.message_id };
        publish(&self.producer, &self.codec, &EMAIL_REQUESTS, &key, request, None).await.map(drop)
    }
}
