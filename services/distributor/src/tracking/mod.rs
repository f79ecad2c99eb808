//! Cart tracking: runaway-cart alarms from location pings, missing and found
//! reports, and silence.
//!
//! The third consumer of the distributor, group `distributor-tracking` on
//! `mamochi.cart-tracking`, drains partition 0 (MISSING and FOUND reports)
//! before the location pings of the other partitions ([`intake`], on
//! [`mamochi_events::lanes::run_laned_batches`]), so a report behind any
//! backlog of pings waits at most for the batch in hand. A batch is one
//! database transaction ([`Tracker::apply`]): its dedupe rows; each report in
//! order (MISSING opens REPORTED_MISSING, FOUND clears every open incident of
//! the cart); then each cart's newest ping stored in `cart_positions` and,
//! where it is newer than the stored one, checked against the centre of the
//! member's comuna ([`positions`]): beyond `tracking.radius_m` it opens
//! OUT_OF_AREA, inside it clears OUT_OF_AREA, and any ping clears SILENT. A
//! timer ([`silence`]) opens SILENT for tracked carts (those with a stored
//! position) that sold within `tracking.sold_within_secs` and whose last
//! position is older than `tracking.silence_after_secs`, during working hours
//! in America/Santiago; a cart that never reported a position is not tracked
//! and never goes silent.
//! The distributor's sales batch keeps `carts.last_sale_at` for it.
//!
//! Guarantee: exactly one RAISED (and at most one CLEARED) alarm in effect per
//! incident, across redeliveries, restarts, crashes and instances: the
//! incident rules and their proof are in [`incidents`]. Opening or clearing,
//! the incident row, its [`mamochi_events::CartAlarm`] and its two emails
//! (vendor, `tracking.staff_email`) commit in one transaction through the
//! distributor's outbox, which publishes them at least once after the
//! commit, with deterministic ids. Tracking offsets are stored only after
//! their batch committed; a redelivered event is a no-op (its dedupe row),
//! and even without it the open-incident index would absorb it. Limit: an
//! event of a vendor who is not a member is parked in the dead letters; a
//! ping without coordinates, or of a kind this version does not know, is
//! counted as applied and otherwise ignored.

pub mod incidents;
pub mod intake;
pub mod positions;
pub mod profiles;
pub mod silence;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use mamochi_common::clock::Clock;
use mamochi_common::config::TrackingSettings;
use mamochi_common::db::PgPool;
use mamochi_common::dedupe::first_times;
use mamochi_events::{CartAlarm, CartAlarmCause, CartAlarmState, CartTrackingEvent, CartTrackingEventKind};
use uuid::Uuid;

use self::incidents::{Audience, Clearing, IncidentError, Opening};
use self::positions::{Area, Position};
use self::profiles::Profiles;
use crate::error::ApplyError;
use crate::metrics::Metrics;
use crate::outbox::{self, Relay};
use crate::store::{self, StoreError};

/// Consumer group of the tracking runner, and its dedupe consumer name.
pub const TRACKING_GROUP: &str = "distributor-tracking";

/// What one tracking batch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    /// Alarms raised and cleared, in the order they were decided.
    pub alarms: Vec<CartAlarm>,
    /// Events applied before (redeliveries, or repeated within the batch).
    pub duplicates: usize,
    /// Events of vendors who are not members: not applied, for parking.
    pub unknown_vendor: Vec<Uuid>,
    /// Events without anything to apply (a ping without coordinates, a kind
    /// this version does not know).
    pub ignored: usize,
}

/// The tracking path: settings, profiles, database, outbox.
#[derive(Clone)]
pub struct Tracker {
    pub pool: PgPool,
    pub clock: Clock,
    pub metrics: Metrics,
    pub relay: Relay,
    pub settings: TrackingSettings,
    pub profiles: Profiles,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl From<IncidentError> for ApplyError {
    fn from(error: IncidentError) -> Self {
        match error {
            IncidentError::Db(error) => ApplyError::Db(error),
            IncidentError::NoProfile(vendor_id) => ApplyError::Store(StoreError::UnknownVendor(vendor_id)),
        }
    }
}

impl Tracker {
    /// Applies `events` in one transaction, then wakes the relay and counts
    /// the alarms.
    pub async fn apply(&self, events: &[CartTrackingEvent]) -> Result<BatchOutcome, ApplyError> {
        if events.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let now = self.clock.now();
        let mut conn = self.pool.get().await.map_err(|error| ApplyError::Pool(error.to_string()))?;
        let outcome =
            conn.transaction::<_, ApplyError, _>(async |conn| self.transaction(conn, events, now).await).await?;
        self.decided(&outcome.alarms).await;
        if outcome.duplicates > 0 {
            self.metrics.duplicates.with_label_values(&["cart-tracking"]).inc_by(outcome.duplicates as u64);
        }
        Ok(outcome)
    }

    async fn transaction(
        &self,
        conn: &mut AsyncPgConnection,
        events: &[CartTrackingEvent],
        now: DateTime<Utc>,
    ) -> Result<BatchOutcome, ApplyError> {
        let ids: Vec<Uuid> = events.iter().map(|event| event.event_id).collect();
        let mut first_time = first_times(conn, TRACKING_GROUP, &ids).await?;
        let mut outcome = BatchOutcome::default();
        let mut fresh = Vec::with_capacity(first_time.len());
        for event in events {
            if first_time.remove(&event.event_id) {
                fresh.push(event);
            } else {
                outcome.duplicates += 1;
            }
        }
        let profiles = self.profiles.for_vendors(conn, fresh.iter().map(|event| event.vendor_id)).await?;
        let (known, unknown): (Vec<_>, Vec<_>) =
            fresh.into_iter().partition(|event| profiles.contains_key(&event.vendor_id));
        outcome.unknown_vendor = unknown.iter().map(|event| event.event_id).collect();
        store::forget(conn, TRACKING_GROUP, &outcome.unknown_vendor).await?;

        let audience = Audience { profiles: &profiles, staff_email: &self.settings.staff_email };
        let mut records = Vec::new();
        // Reports first, one by one in their order: MISSING then FOUND of
        // one cart in one batch opens and then clears.
        let reported: Vec<Uuid> = known
            .iter()
            .filter(|event| event.kind == CartTrackingEventKind::Missing)
            .map(|event| event.vendor_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let last_known = positions::last_known(conn, &reported).await?;
        let mut pings = Vec::new();
        for event in &known {
            match event.kind {
                CartTrackingEventKind::Missing => {
                    let opening = Opening {
                        incident_id: incidents::incident_id(CartAlarmCause::ReportedMissing, event.event_id),
                        vendor_id: event.vendor_id,
                        cause: CartAlarmCause::ReportedMissing,
                        event_id: Some(event.event_id),
                        evidence_at: event.occurred_at,
                        position: last_known.get(&event.vendor_id).copied(),
                        distance_m: None,
                        detail: report_detail("Reportado perdido", event),
                    };
                    let raised = incidents::open(conn, &[opening], &audience, now, &mut records).await?;
                    outcome.alarms.extend(raised);
                }
                CartTrackingEventKind::Found => {
                    let clearing = Clearing {
                        vendor_id: event.vendor_id,
                        causes: incidents::CLEARED_BY_FOUND,
                        event_id: event.event_id,
                        evidence_at: event.occurred_at,
                        position: None,
                        detail: report_detail("Encontrado", event),
                    };
                    let cleared = incidents::clear(conn, &[clearing], &audience, now, &mut records).await?;
                    outcome.alarms.extend(cleared);
                }
                CartTrackingEventKind::Location => match (event.latitude, event.longitude) {
                    (Some(latitude), Some(longitude)) => pings.push(Position {
                        vendor_id: event.vendor_id,
                        latitude,
                        longitude,
                        accuracy_m: event.accuracy_m,
                        occurred_at: event.occurred_at,
                        event_id: Some(event.event_id),
                    }),
                    _ => {
                        tracing::warn!(event_id = %event.event_id, "location ping without coordinates; ignored");
                        outcome.ignored += 1;
                    }
                },
                CartTrackingEventKind::Unknown => {
                    tracing::warn!(event_id = %event.event_id, "tracking event of a kind this version does not know; ignored");
                    outcome.ignored += 1;
                }
            }
        }

        let moved = positions::upsert(conn, &positions::newest_per_cart(pings), now).await?;
        let (mut openings, mut clearings) = (Vec::new(), Vec::new());
        for position in &moved {
            let (Some(profile), Some(event_id)) = (profiles.get(&position.vendor_id), position.event_id) else {
                continue;
            };
            let point = Some((position.latitude, position.longitude));
            let area = positions::area(position, profile, self.settings.radius_m);
            let (causes, detail) = match area {
                Area::Outside { metres } => {
                    openings.push(Opening {
                        incident_id: incidents::incident_id(CartAlarmCause::OutOfArea, event_id),
                        vendor_id: position.vendor_id,
                        cause: CartAlarmCause::OutOfArea,
                        event_id: Some(event_id),
                        evidence_at: position.occurred_at,
                        position: point,
                        distance_m: Some(metres),
                        detail: format!(
                            "Reportó su posición a {:.1} km del centro de {} (el radio es {:.1} km).",
                            metres / 1000.0,
                            profile.comuna,
                            self.settings.radius_m / 1000.0
                        ),
                    });
                    // Reporting from afar still ends a silence.
                    (&[CartAlarmCause::Silent][..], "Volvió a reportar su posición, fuera de su área.".to_string())
                }
                Area::Inside { metres } => (
                    incidents::CLEARED_BY_POSITION,
                    format!("Reportó su posición a {:.1} km del centro de {}.", metres / 1000.0, profile.comuna),
                ),
                Area::Unchecked => (&[CartAlarmCause::Silent][..], "Volvió a reportar su posición.".to_string()),
            };
            clearings.push(Clearing {
                vendor_id: position.vendor_id,
                causes,
                event_id,
                evidence_at: position.occurred_at,
                position: point,
                detail,
            });
        }
        // Clear before opening: a silent cart that reports from afar closes
        // the silence, then opens out-of-area, in that order.
        outcome.alarms.extend(incidents::clear(conn, &clearings, &audience, now, &mut records).await?);
        outcome.alarms.extend(incidents::open(conn, &openings, &audience, now, &mut records).await?);
        outbox::insert(conn, &records).await?;
        Ok(outcome)
    }

    /// After a commit that decided `alarms`: wakes the relay, counts them,
    /// and refreshes the open-incidents gauge from the database.
    pub async fn decided(&self, alarms: &[CartAlarm]) {
        if alarms.is_empty() {
            return;
        }
        self.relay.committed();
        for alarm in alarms {
            let cause = incidents::cause_label(alarm.cause);
            self.metrics.tracking_alarms.with_label_values(&[cause, incidents::state_label(alarm.state)]).inc();
            if alarm.state == CartAlarmState::Raised {
                let latency = self.clock.real_duration(alarm.decided_at - alarm.evidence_at);
                self.metrics.tracking_alarm_latency_seconds.with_label_values(&[cause]).observe(latency.as_secs_f64());
            }
            tracing::info!(
                incident_id = %alarm.incident_id,
                vendor_id = %alarm.vendor_id,
                cause,
                state = incidents::state_label(alarm.state),
                "cart alarm decided"
            );
        }
        self.refresh_open_incidents().await;
    }

    /// Sets the open-incidents gauge from the database; a failure only
    /// leaves the gauge stale until the next change.
    pub async fn refresh_open_incidents(&self) {
        let counts = match self.pool.get().await {
            Ok(mut conn) => incidents::open_counts(&mut conn).await.map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match counts {
            Ok(counts) => {
                for (cause, open) in counts {
                    self.metrics.tracking_open_incidents.with_label_values(&[incidents::cause_label(cause)]).set(open);
                }
            }
            Err(error) => tracing::warn!(%error, "open incidents not counted; the gauge is stale"),
        }
    }
}

/// The detail of a report: what, who, and the note if any.
fn report_detail(what: &str, event: &CartTrackingEvent) -> String {
    let who = if event.reported_by == "vendor" { "la vendedora o el vendedor" } else { event.reported_by.as_str() };
    match event.note.as_deref().map(str::trim).filter(|note| !note.is_empty()) {
        Some(note) => format!("{what} por {who}: «{note}»."),
        None => format!("{what} por {who}."),
    }
}
