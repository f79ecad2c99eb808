//! Applies each sale to its vendor's cart.
//!
//! In one transaction: the dedupe record (consumer `distributor`, the sale
//! id), the locked cart, the new stock, and, when the sale triggers them, the
//! LOW_STOCK event with its email request and the DEPLETED event, produced and
//! acknowledged before the commit. A crash before the commit rolls the stock
//! back and the redelivered sale derives the same ids again; a crash after it
//! leaves the derived records already acknowledged.

use diesel_async::AsyncConnection;
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use mamochi_events::runner::{Envelope, Handler, HandlerError};
use mamochi_events::{SaleRecorded, StockEventKind};
use tracing::instrument;

use crate::derived;
use crate::error::ApplyError;
use crate::metrics::Metrics;
use crate::publisher::Publisher;
use crate::rules::{self, Cart, SaleEffect};
use crate::store;

/// The stock settings the handlers apply.
#[derive(Debug, Clone, Copy)]
pub struct StockRules {
    pub initial_stock: i32,
    pub restock_quantity: i32,
    pub low_stock_threshold: i32,
}

/// Handler of `mamochi.sales` records.
pub struct SaleHandler {
    pub pool: PgPool,
    pub publisher: Publisher,
    pub clock: Clock,
    pub metrics: Metrics,
    pub rules: StockRules,
}

impl std::fmt::Debug for SaleHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaleHandler").field("rules", &self.rules).finish_non_exhaustive()
    }
}

impl Handler<SaleRecorded> for SaleHandler {
    #[instrument(
        name = "sale",
        skip_all,
        fields(topic = %envelope.topic, partition = envelope.partition, offset = envelope.offset,
               sale_id = %envelope.value.sale_id, vendor_id = %envelope.value.vendor_id)
    )]
    async fn handle(&self, envelope: Envelope<SaleRecorded>) -> Result<(), HandlerError> {
        let sale = envelope.value;
        match self.apply(&sale).await? {
            None => {
                self.metrics.duplicates.with_label_values(&["sales"]).inc();
                tracing::info!("sale already applied; skipped");
            }
            Some(effect) => {
                self.metrics.sales_applied.inc();
                if effect.low_stock_alert {
                    self.metrics.low_stock_alerts.inc();
                }
                if effect.oversold > 0 {
                    self.metrics.oversold_servings.inc_by(effect.oversold.unsigned_abs().into());
                    tracing::warn!(oversold = effect.oversold, "sale exceeded the cart's stock; stock floored at zero");
                }
                // recorded_at is platform time; the histogram wants real seconds.
                let latency = self.clock.real_duration(self.clock.now() - sale.recorded_at);
                self.metrics.end_to_end_seconds.observe(latency.as_secs_f64());
                tracing::info!(stock_after = effect.stock_after, depleted = effect.depleted, "sale applied");
            }
        }
        Ok(())
    }
}

impl SaleHandler {
    /// The transaction; `None` when the sale was applied before.
    async fn apply(&self, sale: &SaleRecorded) -> Result<Option<SaleEffect>, ApplyError> {
        // Refuse impossible sales before touching anything.
        rules::check_quantity(sale.quantity)?;
        let mut conn = self.pool.get().await.map_err(|error| ApplyError::Pool(error.to_string()))?;
        let now = self.clock.now();
        let vendor_id = sale.vendor_id;
        conn.transaction::<_, ApplyError, _>(async |conn| {
            if !store::first_time(conn, store::SALES_CONSUMER, sale.sale_id).await? {
                return Ok(None);
            }
            let cart = store::lock_cart(conn, vendor_id, self.rules.initial_stock).await?;
            let effect = rules::apply_sale(cart, sale.quantity, self.rules.low_stock_threshold)?;
            let after = Cart { stock: effect.stock_after, low_stock_alerted: cart.low_stock_alerted || effect.low_stock_alert };
            store::save_after_sale(conn, vendor_id, after, now).await?;
            if effect.low_stock_alert {
                let recipient = store::recipient(conn, vendor_id).await?;
                let event =
                    derived::stock_event(StockEventKind::LowStock, sale.sale_id, vendor_id, 0, effect.stock_after, "sale", now);
                self.publisher.stock(&event).await?;
                let email = derived::low_stock_email(
                    sale.sale_id,
                    &recipient,
                    effect.stock_after,
                    self.rules.low_stock_threshold,
                    now,
                );
                self.publisher.email(&email).await?;
            }
            if effect.depleted {
                let event = derived::stock_event(StockEventKind::Depleted, sale.sale_id, vendor_id, 0, 0, "sale", now);
                self.publisher.stock(&event).await?;
            }
            Ok(Some(effect))
        })
        .await
    }
}
