//! Applies a batch of sales to their vendors' carts in one transaction.
//!
//! In that transaction: one multi-row dedupe insert (consumer `distributor`,
//! the sale ids), one statement locking the carts of the batch's vendors (in
//! `vendor_id` order), the rules applied sale by sale in Kafka order (a
//! vendor's sales share a partition, so the batch's order is their order),
//! one statement writing the new carts (with each cart's last sale, for the
//! cart tracking's silence check), one storing where the sales that say so
//! happened as their carts' newest positions, and one writing the derived records
//! to the outbox: LOW_STOCK with its email, DEPLETED, and each changed cart's
//! new level. Nothing is produced to Kafka while the carts are locked; the
//! [`Relay`] produces the outbox after the commit.
//!
//! Guarantee: each sale changes its cart exactly once in effect. A crash
//! before the commit rolls everything back (the redelivered sales are new
//! again); after it, the dedupe rows make their redelivery a no-op and the
//! outbox still holds what they derived. A sale of a vendor who is not a
//! member is reported back (its dedupe row removed) for the caller to park;
//! the rest of the batch applies.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use mamochi_common::dedupe::first_times;
use mamochi_events::{CartStockLevel, SaleRecorded, StockEventKind};
use uuid::Uuid;

use crate::derived;
use crate::error::ApplyError;
use crate::metrics::Metrics;
use crate::outbox::{self, OutboxRecord, Relay};
use crate::rules::{self, SaleEffect};
use crate::store::{self, LockedCart};
use crate::tracking::positions::{self, Position};

/// The stock settings the handlers apply.
#[derive(Debug, Clone, Copy)]
pub struct StockRules {
    pub initial_stock: i32,
    pub restock_quantity: i32,
    pub low_stock_threshold: i32,
}

/// A sale that changed its cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub sale_id: Uuid,
    pub effect: SaleEffect,
    pub recorded_at: DateTime<Utc>,
}

/// What one batch transaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// In the batch's order.
    pub applied: Vec<Applied>,
    /// Sales applied before (redeliveries, or repeated within the batch).
    pub duplicates: usize,
    /// Sales of vendors who are not members: not applied, for parking.
    pub unknown_vendor: Vec<Uuid>,
}

/// The sales path: rules, database, outbox.
#[derive(Clone)]
pub struct SaleApplier {
    pub pool: PgPool,
    pub clock: Clock,
    pub metrics: Metrics,
    pub rules: StockRules,
    pub relay: Relay,
}

impl std::fmt::Debug for SaleApplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaleApplier").field("rules", &self.rules).finish_non_exhaustive()
    }
}

/// A record the rules derived, before recipients are known.
enum Derivation {
    LowStock { sale_id: Uuid, vendor_id: Uuid, stock_after: i32 },
    Depleted { sale_id: Uuid, vendor_id: Uuid },
}

impl SaleApplier {
    /// Applies `sales` (each of at least one serving) in one transaction,
    /// then wakes the relay; counts what happened in the metrics.
    pub async fn apply(&self, sales: &[SaleRecorded]) -> Result<BatchOutcome, ApplyError> {
        if sales.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let now = self.clock.now();
        let mut conn = self.pool.get().await.map_err(|error| ApplyError::Pool(error.to_string()))?;
        let outcome =
            conn.transaction::<_, ApplyError, _>(async |conn| self.transaction(conn, sales, now).await).await?;
        if !outcome.applied.is_empty() {
            self.relay.committed();
        }
        self.count(&outcome);
        Ok(outcome)
    }

    async fn transaction(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        sales: &[SaleRecorded],
        now: DateTime<Utc>,
    ) -> Result<BatchOutcome, ApplyError> {
        let ids: Vec<Uuid> = sales.iter().map(|sale| sale.sale_id).collect();
        let mut first_time = first_times(conn, store::SALES_CONSUMER, &ids).await?;
        let mut duplicates = 0;
        let mut fresh = Vec::with_capacity(first_time.len());
        for sale in sales {
            // A sale repeated inside the batch is new only the first time.
            if first_time.remove(&sale.sale_id) {
                fresh.push(sale);
            } else {
                duplicates += 1;
            }
        }
        let vendors: Vec<Uuid> = fresh.iter().map(|sale| sale.vendor_id).collect::<BTreeSet<_>>().into_iter().collect();
        let mut carts: HashMap<Uuid, LockedCart> = store::lock_carts(conn, &vendors, self.rules.initial_stock).await?;

        let mut applied = Vec::with_capacity(fresh.len());
        let mut unknown_vendor = Vec::new();
        let mut derivations = Vec::new();
        // Changed vendors in the order they first changed, for the levels.
        let mut changed_order = Vec::new();
        let mut changed_seen = HashSet::new();
        // Each changed vendor's latest sale, and where sales happened, for
        // the cart tracking.
        let mut last_sale: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
        let mut sold_at = Vec::new();
        for sale in fresh {
            let Some(locked) = carts.get_mut(&sale.vendor_id) else {
                unknown_vendor.push(sale.sale_id);
                continue;
            };
            let effect = rules::apply_sale(locked.cart, sale.quantity, self.rules.low_stock_threshold)?;
            if changed_seen.insert(sale.vendor_id) {
                changed_order.push(sale.vendor_id);
            }
            let latest = last_sale.entry(sale.vendor_id).or_insert(sale.occurred_at);
            *latest = (*latest).max(sale.occurred_at);
            if let Some(location) = &sale.location {
                sold_at.push(Position {
                    vendor_id: sale.vendor_id,
                    latitude: location.latitude,
                    longitude: location.longitude,
                    accuracy_m: location.accuracy_m,
                    occurred_at: sale.occurred_at,
                    event_id: None,
                });
            }
            locked.cart.stock = effect.stock_after;
            locked.cart.low_stock_alerted |= effect.low_stock_alert;
            if effect.low_stock_alert {
                derivations.push(Derivation::LowStock {
                    sale_id: sale.sale_id,
                    vendor_id: sale.vendor_id,
                    stock_after: effect.stock_after,
                });
            }
            if effect.depleted {
                derivations.push(Derivation::Depleted { sale_id: sale.sale_id, vendor_id: sale.vendor_id });
            }
            applied.push(Applied { sale_id: sale.sale_id, effect, recorded_at: sale.recorded_at });
        }
        store::forget(conn, store::SALES_CONSUMER, &unknown_vendor).await?;

        let changed: Vec<(Uuid, LockedCart)> =
            changed_order.iter().filter_map(|vendor| carts.get(vendor).map(|cart| (*vendor, *cart))).collect();
        let rows: Vec<_> = changed
            .iter()
            .map(|(vendor, locked)| (*vendor, locked.cart, last_sale.get(vendor).copied().unwrap_or(now)))
            .collect();
        store::save_after_sales(conn, &rows, now).await?;
        // A sale's location is the cart's position then; it moves the stored
        // one only if newer. Incidents are the tracking consumer's to decide,
        // from pings.
        positions::upsert(conn, &positions::newest_per_cart(sold_at), now).await?;

        let records = self.records(conn, &derivations, &changed, now).await?;
        outbox::insert(conn, &records).await?;
        Ok(BatchOutcome { applied, duplicates, unknown_vendor })
    }

    /// The outbox records: derived events in sale order, then each changed
    /// cart's level.
    async fn records(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        derivations: &[Derivation],
        changed: &[(Uuid, LockedCart)],
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxRecord>, ApplyError> {
        let to_alert: Vec<Uuid> = derivations
            .iter()
            .filter_map(|derivation| match derivation {
                Derivation::LowStock { vendor_id, .. } => Some(*vendor_id),
                Derivation::Depleted { .. } => None,
            })
            .collect();
        let recipients = store::recipients(conn, &to_alert).await?;
        let mut records = Vec::with_capacity(derivations.len() * 2 + changed.len());
        for derivation in derivations {
            match *derivation {
                Derivation::LowStock { sale_id, vendor_id, stock_after } => {
                    let recipient = recipients.get(&vendor_id).ok_or(store::StoreError::UnknownVendor(vendor_id))?;
                    records.push(OutboxRecord::Stock(derived::stock_event(
                        StockEventKind::LowStock,
                        sale_id,
                        vendor_id,
                        0,
                        stock_after,
                        "sale",
                        now,
                    )));
                    records.push(OutboxRecord::Email(derived::low_stock_email(
                        sale_id,
                        recipient,
                        stock_after,
                        self.rules.low_stock_threshold,
                        now,
                    )));
                }
                Derivation::Depleted { sale_id, vendor_id } => {
                    records.push(OutboxRecord::Stock(derived::stock_event(
                        StockEventKind::Depleted,
                        sale_id,
                        vendor_id,
                        0,
                        0,
                        "sale",
                        now,
                    )));
                }
            }
        }
        records.extend(changed.iter().map(|(vendor_id, locked)| {
            OutboxRecord::Level(CartStockLevel {
                vendor_id: *vendor_id,
                stock: locked.cart.stock,
                restocks: locked.restocks,
                updated_at: now,
            })
        }));
        Ok(records)
    }

    fn count(&self, outcome: &BatchOutcome) {
        self.metrics
            .batch_sales
            .observe((outcome.applied.len() + outcome.duplicates + outcome.unknown_vendor.len()) as f64);
        if outcome.duplicates > 0 {
            self.metrics.duplicates.with_label_values(&["sales"]).inc_by(outcome.duplicates as u64);
            tracing::info!(duplicates = outcome.duplicates, "sales already applied; skipped");
        }
        let now = self.clock.now();
        for applied in &outcome.applied {
            self.metrics.sales_applied.inc();
            let effect = applied.effect;
            if effect.low_stock_alert {
                self.metrics.low_stock_alerts.inc();
            }
            if effect.oversold > 0 {
                self.metrics.oversold_servings.inc_by(effect.oversold.unsigned_abs().into());
                tracing::debug!(sale_id = %applied.sale_id, oversold = effect.oversold, "sale exceeded the cart's stock; stock floored at zero");
            }
            // recorded_at is platform time; the histogram wants real seconds.
            let latency = self.clock.real_duration(now - applied.recorded_at);
            self.metrics.end_to_end_seconds.observe(latency.as_secs_f64());
        }
    }
}
