//! The silence check: a timer that opens SILENT incidents for tracked carts
//! that sold recently and stopped reporting where they are.
//!
//! Every `tracking.check_interval_secs` (real seconds), while the platform's
//! clock reads a local hour (America/Santiago) within
//! [`working_hours_start`, `working_hours_end`), one query finds the carts
//! whose last sale is within `tracking.sold_within_secs`, whose stored
//! position (`cart_positions`) is older than `tracking.silence_after_secs`,
//! and that have no open SILENT incident; each is opened through
//! [`incidents::open`] with `evidence_at` = that last position's time +
//! `silence_after_secs`, in one transaction with its records. A cart that
//! never reported a position is not tracked (no device, or tracking not set
//! up), so it cannot go silent: it is never opened here, however it sells.
//!
//! Guarantee: one SILENT incident per silence. The incident id is derived
//! from the cart and the evidence time, so every instance's timer and every
//! later check finds the same incident (and the open-incident index lets only
//! one insert count); a silence already cleared (by a FOUND report) is not
//! opened again until the cart reports and falls silent anew. Each check
//! also refreshes the carts-reporting gauge.

use chrono::{DateTime, Duration, Timelike, Utc};
use diesel::sql_types::{BigInt, Double, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use mamochi_common::shutdown::Shutdown;
use mamochi_events::CartAlarmCause;
use mamochi_rules::week::ZONE;
use uuid::Uuid;

use super::incidents::{self, Audience, Opening};
use super::Tracker;
use crate::error::ApplyError;
use crate::outbox;

/// Most carts opened per check; the next check takes the rest.
const MAX_PER_CHECK: i64 = 1_000;

#[derive(QueryableByName)]
struct Silent {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    vendor_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    last_seen: DateTime<Utc>,
    #[diesel(sql_type = Double)]
    latitude: f64,
    #[diesel(sql_type = Double)]
    longitude: f64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    carts: i64,
}

/// Whether `now` falls within the working hours `[start, end)`, local time.
pub fn within_working_hours(now: DateTime<Utc>, start: u32, end: u32) -> bool {
    (start..end).contains(&now.with_timezone(&ZONE).hour())
}

impl Tracker {
    /// Checks for silence every `check_interval_secs` until `shutdown`.
    pub async fn run_silence_checks(&self, shutdown: &Shutdown) {
        let interval = std::time::Duration::from_secs(self.settings.check_interval_secs.max(1));
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(interval) => {},
            }
            match self.check_silence().await {
                Ok(0) => {}
                Ok(opened) => tracing::info!(opened, "silent carts found"),
                Err(error) => tracing::warn!(%error, "silence check failed; retried at the next interval"),
            }
        }
    }

    /// One check: opens SILENT for every silent cart; returns how many.
    pub async fn check_silence(&self) -> Result<usize, ApplyError> {
        let now = self.clock.now();
        let mut conn = self.pool.get().await.map_err(|error| ApplyError::Pool(error.to_string()))?;
        let silence_after = Duration::seconds(i64::try_from(self.settings.silence_after_secs).unwrap_or(i64::MAX / 2));
        let reporting = diesel::sql_query("SELECT count(*) AS carts FROM cart_positions WHERE occurred_at >= $1")
            .bind::<Timestamptz, _>(now - silence_after)
            .get_result::<Count>(&mut conn)
            .await?;
        self.metrics.tracking_carts_reporting.set(reporting.carts);
        if !within_working_hours(now, self.settings.working_hours_start, self.settings.working_hours_end) {
            return Ok(0);
        }
        let raised =
            conn.transaction::<_, ApplyError, _>(async |conn| self.open_silent(conn, now, silence_after).await).await?;
        let opened = raised.len();
        self.decided(&raised).await;
        Ok(opened)
    }

    async fn open_silent(
        &self,
        conn: &mut AsyncPgConnection,
        now: DateTime<Utc>,
        silence_after: Duration,
    ) -> Result<Vec<mamochi_events::CartAlarm>, ApplyError> {
        let sold_within = Duration::seconds(i64::try_from(self.settings.sold_within_secs).unwrap_or(i64::MAX / 2));
        // An inner join: a cart that never reported a position is not tracked,
        // so its silence says nothing about where it is.
        let silent = diesel::sql_query(
            "SELECT c.vendor_id, p.occurred_at AS last_seen, p.latitude, p.longitude \
             FROM carts c JOIN cart_positions p ON p.vendor_id = c.vendor_id \
             WHERE c.last_sale_at >= $1 \
               AND p.occurred_at < $2 \
               AND NOT EXISTS (SELECT 1 FROM cart_incidents i \
                               WHERE i.vendor_id = c.vendor_id AND i.cause = 'SILENT' AND i.cleared_at IS NULL) \
             ORDER BY c.vendor_id LIMIT $3",
        )
        .bind::<Timestamptz, _>(now - sold_within)
        .bind::<Timestamptz, _>(now - silence_after)
        .bind::<BigInt, _>(MAX_PER_CHECK)
        .load::<Silent>(conn)
        .await?;
        if silent.is_empty() {
            return Ok(Vec::new());
        }
        let profiles = self.profiles.for_vendors(conn, silent.iter().map(|cart| cart.vendor_id)).await?;
        let openings: Vec<Opening> = silent
            .iter()
            .filter(|cart| profiles.contains_key(&cart.vendor_id))
            .map(|cart| {
                let evidence_at = cart.last_seen + silence_after;
                let local = cart.last_seen.with_timezone(&ZONE).format("%H:%M");
                Opening {
                    incident_id: incidents::silent_incident_id(cart.vendor_id, evidence_at),
                    vendor_id: cart.vendor_id,
                    cause: CartAlarmCause::Silent,
                    event_id: None,
                    evidence_at,
                    position: Some((cart.latitude, cart.longitude)),
                    distance_m: None,
                    detail: format!(
                        "Vendió en la última hora y no reporta su posición desde las {local} (más de {} minutos).",
                        silence_after.num_minutes().max(1)
                    ),
                }
            })
            .collect();
        let audience = Audience { profiles: &profiles, staff_email: &self.settings.staff_email };
        let mut records = Vec::new();
        let raised = incidents::open(conn, &openings, &audience, now, &mut records).await?;
        outbox::insert(conn, &records).await?;
        Ok(raised)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_hours_are_local_santiago_hours() {
        // 2026-12-01 12:00 UTC is 09:00 in Santiago (summer time, UTC-3).
        let morning = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z").expect("instant").with_timezone(&Utc);
        // 2026-12-02 00:30 UTC is 21:30 the evening before.
        let evening = DateTime::parse_from_rfc3339("2026-12-02T00:30:00Z").expect("instant").with_timezone(&Utc);

        assert!(within_working_hours(morning, 8, 21));
        assert!(!within_working_hours(evening, 8, 21));
        assert!(within_working_hours(evening, 0, 24));
        assert!(!within_working_hours(morning, 10, 21));
    }
}
