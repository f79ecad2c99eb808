//! Each cart's last known location and whether it is reported missing, from
//! memory, fed by `mamochi.cart-tracking`.
//!
//! Every gateway reads every partition of the topic (no group membership,
//! no commits), starting at the records written [`HISTORY`] ago, so a
//! restarted gateway knows the carts that reported within that window
//! without replaying the topic's whole retention ([`super::follow`] runs
//! the loop). It is a view with a
//! stated staleness: it lags the topic by the time a record takes to
//! travel (milliseconds), so a ping answered 202 shows in
//! `GET /v1/carts/me/location` moments later, not at once. The newest
//! position wins by `occurred_at`, not by arrival, so a late ping never
//! hides a newer one. [`CartView::following`] turns true once the view has
//! fixed a concrete starting offset on every partition (the end, for a
//! partition with nothing newer than the window) and is assigned to them;
//! the gateway is not ready before that, so no event acknowledged after
//! readiness can fall before where the view started reading. A cart the
//! view has not heard of simply has no known location yet.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mamochi_common::config::KafkaSettings;
use mamochi_common::shutdown::Shutdown;
use mamochi_events::codec::EventCodec;
use mamochi_events::topics::CART_TRACKING;
use mamochi_events::{CartTrackingEvent, CartTrackingEventKind, VendorKey};
use uuid::Uuid;

use super::follow::{Follower, Progress, Start};

/// How far back a starting gateway reads the topic.
pub const HISTORY: Duration = Duration::from_secs(24 * 60 * 60);

/// The last [`HISTORY`] of the topic, then what follows.
const FOLLOWER: Follower<VendorKey, CartTrackingEvent> =
    Follower { topic: &CART_TRACKING, view: "cart view", role: "gateway-cart-view", start: Start::Since(HISTORY) };

/// A position a cart reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_m: f64,
    pub occurred_at: DateTime<Utc>,
}

/// What the view knows about one cart.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CartState {
    pub position: Option<Position>,
    /// The latest MISSING or FOUND report said missing.
    pub missing: bool,
    /// When that latest report was made.
    reported_at: Option<DateTime<Utc>>,
}

/// Every cart the topic mentioned within [`HISTORY`].
#[derive(Debug, Default)]
pub struct CartView {
    carts: RwLock<HashMap<Uuid, CartState>>,
    progress: Progress,
}

impl CartView {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the view is assigned to every partition from a concrete offset.
    pub fn following(&self) -> bool {
        self.progress.following()
    }

    /// What the view knows about the cart of `vendor_id`.
    pub fn cart(&self, vendor_id: Uuid) -> Option<CartState> {
        let carts = self.carts.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        carts.get(&vendor_id).copied()
    }

    /// Every known cart, ordered by vendor id (a stable order for paging).
    pub fn all(&self) -> Vec<(Uuid, CartState)> {
        let carts = self.carts.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all: Vec<_> = carts.iter().map(|(id, state)| (*id, *state)).collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// Takes in one event: the newest position and the newest report win.
    pub fn apply(&self, event: &CartTrackingEvent) {
        let mut carts = self.carts.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match event.kind {
            CartTrackingEventKind::Location => {
                let (Some(latitude), Some(longitude), Some(accuracy_m)) =
                    (event.latitude, event.longitude, event.accuracy_m)
                else {
                    return;
                };
                let state = carts.entry(event.vendor_id).or_default();
                if state.position.is_none_or(|known| known.occurred_at <= event.occurred_at) {
                    state.position = Some(Position { latitude, longitude, accuracy_m, occurred_at: event.occurred_at });
                }
            }
            CartTrackingEventKind::Missing | CartTrackingEventKind::Found => {
                let state = carts.entry(event.vendor_id).or_default();
                if state.reported_at.is_none_or(|known| known <= event.occurred_at) {
                    state.missing = event.kind == CartTrackingEventKind::Missing;
                    state.reported_at = Some(event.occurred_at);
                }
            }
            // A kind this release does not know says nothing it can use.
            CartTrackingEventKind::Unknown => {}
        }
    }

    /// Follows the topic until `shutdown`; starts over if the consumer
    /// cannot be set up.
    pub async fn follow(self: Arc<Self>, settings: KafkaSettings, codec: Arc<EventCodec>, shutdown: Shutdown) {
        FOLLOWER.run(&settings, &codec, &shutdown, &self.progress, |event| self.apply(event)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(vendor_id: Uuid, latitude: f64, at: DateTime<Utc>) -> CartTrackingEvent {
        CartTrackingEvent {
            event_id: Uuid::new_v4(),
            vendor_id,
            kind: CartTrackingEventKind::Location,
            occurred_at: at,
            latitude: Some(latitude),
            longitude: Some(-70.6),
            accuracy_m: Some(12.0),
            note: None,
            reported_by: "vendor".into(),
        }
    }

    fn report(vendor_id: Uuid, kind: CartTrackingEventKind, at: DateTime<Utc>) -> CartTrackingEvent {
        CartTrackingEvent { kind, latitude: None, longitude: None, accuracy_m: None, ..ping(vendor_id, 0.0, at) }
    }

    #[test]
    fn the_newest_position_wins_whatever_the_arrival_order() {
        let view = CartView::new();
        let cart = Uuid::new_v4();
        let now = Utc::now();
        view.apply(&ping(cart, -33.45, now));
        view.apply(&ping(cart, -33.40, now - chrono::Duration::seconds(30)));
        assert_eq!(view.cart(cart).and_then(|state| state.position).map(|p| p.latitude), Some(-33.45));
        view.apply(&ping(cart, -33.50, now + chrono::Duration::seconds(1)));
        assert_eq!(view.cart(cart).and_then(|state| state.position).map(|p| p.latitude), Some(-33.50));
        assert_eq!(view.cart(Uuid::new_v4()), None);
    }

    #[test]
    fn the_latest_report_says_whether_a_cart_is_missing() {
        let view = CartView::new();
        let cart = Uuid::new_v4();
        let now = Utc::now();
        view.apply(&report(cart, CartTrackingEventKind::Missing, now));
        assert!(view.cart(cart).is_some_and(|state| state.missing && state.position.is_none()));
        view.apply(&report(cart, CartTrackingEventKind::Found, now + chrono::Duration::seconds(5)));
        assert!(view.cart(cart).is_some_and(|state| !state.missing));
        view.apply(&report(cart, CartTrackingEventKind::Unknown, now + chrono::Duration::seconds(9)));
        assert!(view.cart(cart).is_some_and(|state| !state.missing), "an unknown kind changes nothing");
    }

    #[test]
    fn carts_are_listed_in_a_stable_order() {
        let view = CartView::new();
        let now = Utc::now();
        for n in [3u128, 1, 2] {
            view.apply(&ping(Uuid::from_u128(n), -33.0, now));
        }
        let ids: Vec<_> = view.all().into_iter().map(|(id, _)| id.as_u128()).collect();
        assert_eq!(ids, vec![1, 2, 3]);
    }
}
