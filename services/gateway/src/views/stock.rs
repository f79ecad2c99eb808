//! Each cart's stock, from memory, fed by the compacted `mamochi.cart-stock`
//! topic.
//!
//! The distributor writes a cart's level after every committed change; this
//! view reads every partition of that topic from the start (compaction keeps
//! one record per cart, so start-up reads one record per vendor) and then
//! follows it. It is a view, not the record: it lags the distributor's
//! commits by the time a record takes to travel (milliseconds when the
//! distributor keeps up), so two sales racing for the last servings can both
//! pass the stock rule; the distributor then floors the stock at zero and
//! counts the overshoot, as the sales route documents. A cart the topic has
//! not mentioned yet (a member approved a moment ago) has the configured
//! initial stock, which is what approval gives every new cart.
//!
//! [`StockView::caught_up`] turns true once the view has read up to the end
//! each partition had when following started; the gateway is not ready
//! before that, so a restarted gateway never judges sales on an empty view.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mamochi_common::config::KafkaSettings;
use mamochi_common::kafka;
use mamochi_common::shutdown::Shutdown;
use mamochi_events::codec::EventCodec;
use mamochi_events::topics::CART_STOCK;
use mamochi_events::CartStockLevel;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

/// How long one metadata or watermark request may take.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// Every cart's last known stock.
#[derive(Debug)]
pub struct StockView {
    levels: RwLock<HashMap<Uuid, i32>>,
    initial_stock: i32,
    caught_up: AtomicBool,
}

impl StockView {
    /// An empty view; carts it has not heard of have `initial_stock`.
    pub fn new(initial_stock: i32) -> Self {
        Self { levels: RwLock::default(), initial_stock, caught_up: AtomicBool::new(false) }
    }

    /// The cart's stock as last committed by the distributor.
    pub fn stock(&self, vendor_id: Uuid) -> i32 {
        let levels = self.levels.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        levels.get(&vendor_id).copied().unwrap_or(self.initial_stock)
    }

    /// Takes in one level record.
    pub fn apply(&self, level: &CartStockLevel) {
        let mut levels = self.levels.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        levels.insert(level.vendor_id, level.stock);
    }

    /// Whether the view has read everything that was on the topic when it
    /// started following it.
    pub fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Relaxed)
    }

    /// Follows the topic until `shutdown`; retries from scratch (re-reading
    /// the compacted topic) if the consumer cannot be set up.
    pub async fn follow(self: Arc<Self>, settings: KafkaSettings, codec: Arc<EventCodec>, shutdown: Shutdown) {
        loop {
            match self.follow_once(&settings, &codec, &shutdown).await {
                Ok(()) => return,
                Err(error) => tracing::warn!(%error, "stock view: cannot follow the cart-stock topic yet; retrying"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn follow_once(
        &self,
        settings: &KafkaSettings,
        codec: &EventCodec,
        shutdown: &Shutdown,
    ) -> Result<(), KafkaError> {
        let admin = kafka::admin(settings)?;
        kafka::ensure_topics(&admin, &[CART_STOCK.info.spec()]).await?;
        // No group membership and no commits: every gateway reads the whole
        // (compacted) topic; the group id only satisfies the client.
        let mut config = kafka::consumer_config(settings, &settings.group("gateway-stock-view"), "gateway-stock-view");
        config.set("enable.auto.commit", "false");
        let consumer: Arc<StreamConsumer> = Arc::new(config.create()?);
        let ends = {
            let consumer = consumer.clone();
            tokio::task::spawn_blocking(move || high_watermarks(&consumer))
                .await
                .map_err(|_| KafkaError::Global(rdkafka::types::RDKafkaErrorCode::Fail))??
        };
        let mut assignment = TopicPartitionList::new();
        for (partition, _) in &ends {
            assignment.add_partition_offset(CART_STOCK.name(), *partition, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let mut pending: HashMap<i32, i64> = ends.into_iter().filter(|(_, end)| *end > 0).collect();
        if pending.is_empty() {
            self.mark_caught_up();
        }
        loop {
            let message = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(()),
                received = consumer.recv() => received,
            };
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "stock view: consumer error; librdkafka retries by itself");
                    continue;
                }
            };
            match codec.decode::<CartStockLevel>(message.payload()).await {
                Ok(level) => self.apply(&level),
                Err(error) => tracing::warn!(
                    %error, partition = message.partition(), offset = message.offset(),
                    "stock view: skipped an unreadable level record"
                ),
            }
            if let Some(end) = pending.get(&message.partition()) {
                if message.offset() + 1 >= *end {
                    pending.remove(&message.partition());
                    if pending.is_empty() {
                        self.mark_caught_up();
                    }
                }
            }
        }
    }

    fn mark_caught_up(&self) {
        if !self.caught_up.swap(true, Ordering::Relaxed) {
            let carts = self.levels.read().map(|levels| levels.len()).unwrap_or_default();
            tracing::info!(carts, "stock view caught up with the cart-stock topic");
        }
    }
}

/// The high watermark of every partition of the cart-stock topic.
fn high_watermarks(consumer: &StreamConsumer) -> Result<Vec<(i32, i64)>, KafkaError> {
    let metadata = consumer.fetch_metadata(Some(CART_STOCK.name()), KAFKA_TIMEOUT)?;
    let mut ends = Vec::new();
    for partition in metadata.topics().iter().flat_map(|topic| topic.partitions()) {
        let (_, high) = consumer.fetch_watermarks(CART_STOCK.name(), partition.id(), KAFKA_TIMEOUT)?;
        ends.push((partition.id(), high));
    }
    if ends.is_empty() {
        return Err(KafkaError::MetadataFetch(rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition));
    }
    Ok(ends)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn an_unknown_cart_has_the_initial_stock_and_a_level_replaces_it() {
        let view = StockView::new(100);
        let vendor = Uuid::new_v4();
        assert_eq!(view.stock(vendor), 100);

        view.apply(&CartStockLevel { vendor_id: vendor, stock: 7, restocks: 0, updated_at: Utc::now() });
        view.apply(&CartStockLevel { vendor_id: vendor, stock: 3, restocks: 1, updated_at: Utc::now() });

        assert_eq!(view.stock(vendor), 3, "the latest level wins");
        assert_eq!(view.stock(Uuid::new_v4()), 100);
    }
}
