//! Restocks carts when they run out or when a vendor asks.
//!
//! DEPLETED (from a sale or reported by the vendor) refills the cart to the
//! configured restock quantity: the cart is empty, so the stock is set, not
//! added (after a sale-driven depletion the stock is already zero, and a
//! vendor's report overrides a count that disagrees with the cart).
//! RESTOCK_REQUESTED adds the requested quantity, or the configured one when
//! the request names none. Either way, in one transaction: the dedupe record
//! (consumer `distributor-stock`, the event id), the locked cart, the new
//! stock (restocks + 1, low-stock alert re-armed), and, in the outbox, the
//! REPLENISHED event, the restock email request and the cart's new level.
//! Nothing is produced while the cart is locked: the [`Relay`] produces the
//! outbox after the commit (see [`crate::outbox`] for why nothing is lost).
//! REPLENISHED, LOW_STOCK and unknown kinds are not the distributor's to act
//! on: their offsets are stored and nothing else happens.
//!
//! [`Relay`]: crate::outbox::Relay

use diesel_async::AsyncConnection;
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use mamochi_common::dedupe::first_times;
use mamochi_events::runner::{Envelope, Handler, HandlerError};
use mamochi_events::{CartStockLevel, StockEvent, StockEventKind};
use tracing::instrument;

use crate::derived;
use crate::error::ApplyError;
use crate::metrics::Metrics;
use crate::outbox::{self, OutboxRecord, Relay};
use crate::rules::{self, StockAction};
use crate::sales::StockRules;
use crate::store;

/// Handler of `mamochi.stock` records.
pub struct RestockHandler {
    pub pool: PgPool,
    pub relay: Relay,
    pub clock: Clock,
    pub metrics: Metrics,
    pub rules: StockRules,
}

/// A restock that committed.
#[derive(Debug, Clone, Copy)]
struct Restocked {
    added: i32,
    stock_after: i32,
}

impl std::fmt::Debug for RestockHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestockHandler").field("rules", &self.rules).finish_non_exhaustive()
    }
}

impl Handler<StockEvent> for RestockHandler {
    #[instrument(
        name = "stock_event",
        skip_all,
        fields(topic = %envelope.topic, partition = envelope.partition, offset = envelope.offset,
               event_id = %envelope.value.event_id, vendor_id = %envelope.value.vendor_id, kind = ?envelope.value.kind)
    )]
    async fn handle(&self, envelope: Envelope<StockEvent>) -> Result<(), HandlerError> {
        let event = envelope.value;
        let action = rules::stock_action(event.kind, event.quantity, self.rules.restock_quantity);
        let (label, reason) = match action {
            StockAction::Ignore => {
                tracing::debug!("not a restock trigger; ignored");
                return Ok(());
            }
            StockAction::RefillEmpty { .. } => ("depleted", "restock after depletion"),
            StockAction::Add { .. } => ("requested", "restock requested by vendor"),
        };
        match self.apply(&event, action, reason).await? {
            None => {
                self.metrics.duplicates.with_label_values(&["stock"]).inc();
                tracing::info!("stock event already applied; skipped");
            }
            Some(restocked) => {
                if event.kind == StockEventKind::Depleted {
                    self.metrics.stock_outs.inc();
                }
                self.metrics.restocks.with_label_values(&[label]).inc();
                tracing::info!(added = restocked.added, stock_after = restocked.stock_after, "cart restocked");
            }
        }
        Ok(())
    }
}

impl RestockHandler {
    /// The transaction; `None` when the event was applied before.
    async fn apply(
        &self,
        event: &StockEvent,
        action: StockAction,
        reason: &str,
    ) -> Result<Option<Restocked>, ApplyError> {
        let mut conn = self.pool.get().await.map_err(|error| ApplyError::Pool(error.to_string()))?;
        let now = self.clock.now();
        let vendor_id = event.vendor_id;
        conn.transaction::<_, ApplyError, _>(async |conn| {
            if first_times(conn, store::STOCK_CONSUMER, &[event.event_id]).await?.is_empty() {
                return Ok(None);
            }
            let locked = store::lock_cart(conn, vendor_id, self.rules.initial_stock).await?;
            let Some((added, stock_after)) = rules::restocked(locked.cart.stock, action)? else {
                return Ok(None);
            };
            let restocks = store::save_restock(conn, vendor_id, stock_after, now).await?;
            let recipient = store::recipient(conn, vendor_id).await?;
            let replenished = derived::stock_event(
                StockEventKind::Replenished,
                event.event_id,
                vendor_id,
                added,
                stock_after,
                reason,
                now,
            );
            let records = [
                OutboxRecord::Stock(replenished),
                OutboxRecord::Email(derived::restock_email(event.event_id, &recipient, added, stock_after, now)),
                OutboxRecord::Level(CartStockLevel { vendor_id, stock: stock_after, restocks, updated_at: now }),
            ];
            outbox::insert(conn, &records).await?;
            Ok(Some(Restocked { added, stock_after }))
        })
        .await
        .inspect(|restocked| {
            if restocked.is_some() {
                self.relay.committed();
            }
        })
    }
}
