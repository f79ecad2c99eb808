//! The distributor service: keeps every cart's stock and restocks carts.
//!
//! Two at-least-once runners in one process: `mamochi.sales` (group
//! `distributor`) applies each sale to its vendor's cart and raises LOW_STOCK
//! and DEPLETED events; `mamochi.stock` (group `distributor-stock`) restocks
//! a cart on DEPLETED or RESTOCK_REQUESTED and announces it with REPLENISHED
//! and an email to the vendor. The stock rules (selling past zero floors at
//! zero and is counted as oversold; one depletion per trip to zero; one
//! low-stock alert per restock cycle) are in [`rules`].
//!
//! Guarantee: each sale and each stock event changes a cart exactly once in
//! effect, and every record derived from it is neither lost nor duplicated in
//! effect. The dedupe record, the cart change (row locked with
//! `SELECT … FOR UPDATE`) and the production of derived records (acknowledged
//! by Kafka) happen inside one database transaction, before its commit;
//! derived records have deterministic ids (UUID v5 of the source id and a
//! label). A crash before the commit rolls the change back and the redelivered
//! source produces the same ids again, which consumers apply once (the
//! notifier sends each message id once); a crash after the commit leaves the
//! derived records already acknowledged. Limit: in that first case a derived
//! record can sit twice in its topic; it is the same id, so only its readers'
//! dedupe keeps it single in effect.

pub mod derived;
pub mod error;
pub mod metrics;
pub mod publisher;
pub mod restock;
pub mod rules;
pub mod sales;
pub mod service;
pub mod store;

pub use service::Distributor;

use mamochi_common::shutdown::Shutdown;
use mamochi_common::Settings;

/// Runs the distributor until `shutdown` is cancelled, then drains, commits
/// and returns `Ok`.
pub async fn run(settings: &Settings, shutdown: Shutdown) -> anyhow::Result<()> {
    Distributor::build(settings).await?.run_until_stopped(shutdown).await
}
