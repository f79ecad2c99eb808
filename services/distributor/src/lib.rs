//! The distributor service: keeps every cart's stock, restocks carts, and
//! tracks where carts are (runaway-cart alarms).
//!
//! Three at-least-once consumers in one process: `mamochi.sales` (group
//! `distributor`) applies sales to their vendors' carts, a polled batch per
//! database transaction ([`intake`], [`sales`]), and raises LOW_STOCK and
//! DEPLETED events; `mamochi.stock` (group `distributor-stock`) restocks a
//! cart on DEPLETED or RESTOCK_REQUESTED and announces it with REPLENISHED
//! and an email to the vendor ([`restock`]). After every committed change the
//! cart's new level goes to the compacted `mamochi.cart-stock`, from which
//! the gateway builds its stock view. `mamochi.cart-tracking` (group
//! `distributor-tracking`) takes missing/found reports before location pings
//! and, with a silence timer, opens and clears cart incidents, each announced
//! by a `mamochi.cart-alarms` record and emails to the vendor and staff
//! ([`tracking`]). The stock rules (selling past zero
//! floors at zero and is counted as oversold; one depletion per trip to
//! zero; one low-stock alert per restock cycle) are in [`rules`].
//!
//! Guarantee: each sale and each stock event changes a cart exactly once in
//! effect, each cart incident is raised exactly once and cleared at most
//! once in effect, and every record derived from them (stock events, email
//! requests, cart levels, cart alarms) is published at least once and is never lost, and for one
//! vendor in the order of the changes. The dedupe rows, the cart change
//! (rows locked with `SELECT … FOR UPDATE`, in `vendor_id` order) and the
//! derived records, written to the `distributor_outbox` table, commit in one
//! database transaction; no Kafka produce is awaited while a cart is locked.
//! After the commit the [`outbox::Relay`] produces the outbox rows in `seq`
//! order and deletes them once Kafka acknowledged them (`acks=all`); rows a
//! crash left behind are produced at the next start and on a short timer.
//! Source offsets are stored only after the commit. A crash before the commit
//! rolls everything back and the redelivered sources derive the same records
//! again. Limit: a crash between Kafka's acknowledgement and the delete of
//! the rows produces them a second time; derived ids are deterministic (UUID
//! v5 of the source id and a label, [`derived`]), so readers apply them once
//! (the notifier sends each message id once, the stock consumer dedupes
//! event ids) and a repeated cart level is followed by every newer one.

pub mod derived;
pub mod error;
pub mod intake;
pub mod metrics;
pub mod outbox;
pub mod publisher;
pub mod restock;
pub mod rules;
pub mod sales;
pub mod service;
pub mod store;
pub mod tracking;

pub use service::Distributor;

use mamochi_common::shutdown::Shutdown;
use mamochi_common::Settings;

/// Runs the distributor until `shutdown` is cancelled, then drains, commits
/// and returns `Ok`.
pub async fn run(settings: &Settings, shutdown: Shutdown) -> anyhow::Result<()> {
    Distributor::build(settings).await?.run_until_stopped(shutdown).await
}
