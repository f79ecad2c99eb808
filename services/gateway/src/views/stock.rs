//! Each cart's stock, from memory, fed by the compacted `mamochi.cart-stock`
//! topic.
//!
//! The distributor writes a cart's level after every committed change; this
//! view reads every partition of that topic from the start (compaction keeps
//! one record per cart, so start-up reads one record per vendor) and then
//! follows it ([`super::follow`] runs the loop). It is a view, not the
//! record: it lags the distributor's commits by the time a record takes to
//! travel (milliseconds when the distributor keeps up), so two sales racing for the last servings can both
//! pass the stock rule; the distributor then floors the stock at zero and
//! counts the overshoot, as the sales route documents. A cart the topic has
//! not mentioned yet (a member approved a moment ago) has the configured
//! initial stock, which is what approval gives every new cart.
//!
//! [`StockView::caught_up`] turns true once the view has read up to the end
//! each partition had when following started; the gateway is not ready
//! before that, so a restarted gateway never judges sales on an empty view.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use mamochi_common::config::KafkaSettings;
use mamochi_common::shutdown::Shutdown;
use mamochi_events::codec::EventCodec;
use mamochi_events::topics::CART_STOCK;
use mamochi_events::{CartStockLevel, VendorKey};
use uuid::Uuid;

use super::follow::{Follower, Progress, Start};

/// The whole compacted topic, then what follows.
const FOLLOWER: Follower<VendorKey, CartStockLevel> =
    Follower { topic: &CART_STOCK, view: "stock view", role: "gateway-stock-view", start: Start::Beginning };

/// Every cart's last known stock.
#[derive(Debug)]
pub struct StockView {
    levels: RwLock<HashMap<Uuid, i32>>,
    initial_stock: i32,
    progress: Progress,
}

impl StockView {
    /// An empty view; carts it has not heard of have `initial_stock`.
    pub fn new(initial_stock: i32) -> Self {
        Self { levels: RwLock::default(), initial_stock, progress: Progress::default() }
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
        self.progress.caught_up()
    }

    /// Follows the topic until `shutdown`; retries from scratch (re-reading
    /// the compacted topic) if the consumer cannot be set up.
    pub async fn follow(self: Arc<Self>, settings: KafkaSettings, codec: Arc<EventCodec>, shutdown: Shutdown) {
        FOLLOWER.run(&settings, &codec, &shutdown, &self.progress, |level| self.apply(level)).await;
    }
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
