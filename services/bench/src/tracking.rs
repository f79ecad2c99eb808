//! The cart-tracking stage: the platform's second hot path (every cart pings
//! every few seconds) and its report lane, measured on the running platform.
//!
//! A backlog of location pings for the bench's carts is written straight to
//! `mamochi.cart-tracking` (typed, through the platform's codec and
//! producer, as the gateway writes them: partitions 1..=3, one cart's pings
//! on one partition, positions inside the carts' comuna so no alarm fires)
//! while the distributor runs; its tracking group applies them. Right after
//! the backlog is acknowledged, one MISSING report for a bench cart goes to
//! the report lane (partition 0), and the bench reads `mamochi.cart-alarms`
//! until the RAISED alarm of that cart arrives; then a FOUND report clears
//! it, so the run leaves no open incident behind.
//!
//! Guarantees: the drain rate counts until the **last** ping's dedupe row
//! (`processed_events`, consumer `distributor-tracking`) was seen committed
//! from another session ([`crate::commits`]: at or after the commit, at
//! most one poll late); a backlog not applied within the wait has a count,
//! no rate. The report's figures are its alarm's own `decided_at` minus the
//! report's `occurred_at` (both the platform clock's, turned into real time)
//! and the wall time from just before the report was written to the moment
//! the bench read its alarm back from Kafka (which adds the outbox relay's
//! publication and the bench's fetch). How many pings the report overtook is
//! counted (committed dedupe rows) right after its alarm was read, never
//! assumed.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use mamochi_common::{kafka, Settings};
use mamochi_distributor::service::TRACKING_GROUP;
use mamochi_events::codec::EventCodec;
use mamochi_events::topics::{CART_ALARMS, CART_REPORT_PARTITION, CART_TRACKING};
use mamochi_events::{CartAlarm, CartAlarmCause, CartAlarmState, CartTrackingEvent, CartTrackingEventKind, VendorKey};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::commits::CommitWatch;
use crate::effects::{self, millis_between};
use crate::progress::Progress;
use crate::raw_kafka;
use crate::results::{ReportTiming, TrackingRun};

/// Longest a broker metadata call may take.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// What the stage needs from the bench.
pub struct Case<'a> {
    /// The bench platform's settings (its clock, Kafka, tracking batch).
    pub settings: &'a Settings,
    pub codec: &'a EventCodec,
    pub pool: &'a PgPool,
    /// The bench vendors' member ids: one cart each, all in
    /// [`crate::identity::COMUNA`].
    pub carts: &'a [Uuid],
    pub pings: u64,
    pub wait: Duration,
    pub epoch: Instant,
}

impl std::fmt::Debug for Case<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("pings", &self.pings).field("carts", &self.carts.len()).finish_non_exhaustive()
    }
}

/// The partition a cart's pings go to: never the report lane, one cart's
/// pings always on the same one (the gateway spreads carts by a hash of
/// their id; the bench by their index, which spreads a few carts evenly).
pub fn ping_partition(cart_index: usize) -> i32 {
    let lanes = (CART_TRACKING.info.partitions - 1).max(1) as usize;
    CART_REPORT_PARTITION + 1 + (cart_index % lanes) as i32
}

/// The centre of the bench carts' comuna, as (latitude, longitude).
pub fn centre() -> anyhow::Result<(f64, f64)> {
    mamochi_rules::comuna::centre(crate::identity::COMUNA)
        .map(|centre| (centre.point.latitude, centre.point.longitude))
        .with_context(|| format!("no centre known for {}", crate::identity::COMUNA))
}

/// A ping of `cart` at `occurred_at`, a few hundred metres at most from `centre`.
fn ping(cart: Uuid, centre: (f64, f64), index: u64, occurred_at: DateTime<Utc>) -> CartTrackingEvent {
    // About ±100 m around the centre, well inside any radius.
    let offset = ((index % 200) as f64 - 100.0) * 1e-5;
    CartTrackingEvent {
        event_id: Uuid::new_v4(),
        vendor_id: cart,
        kind: CartTrackingEventKind::Location,
        occurred_at,
        latitude: Some(centre.0 + offset),
        longitude: Some(centre.1 - offset),
        accuracy_m: Some(12.0),
        note: None,
        reported_by: "vendor".to_string(),
    }
}

fn report(cart: Uuid, kind: CartTrackingEventKind, occurred_at: DateTime<Utc>) -> CartTrackingEvent {
    CartTrackingEvent {
        event_id: Uuid::new_v4(),
        vendor_id: cart,
        kind,
        occurred_at,
        latitude: None,
        longitude: None,
        accuracy_m: None,
        note: Some("mamochi bench".to_string()),
        reported_by: "vendor".to_string(),
    }
}

/// Writes the ping backlog and the two reports, and measures both.
pub async fn run(case: &Case<'_>, progress: &Progress) -> anyhow::Result<TrackingRun> {
    let settings = case.settings;
    let Some(&reported) = case.carts.first() else {
        anyhow::bail!("the tracking stage needs at least one bench cart");
    };
    let clock = Clock::from_settings(&settings.time).context("while reading the time settings")?;
    let centre = centre()?;

    progress.set_message("encoding the pings");
    // Platform time, a millisecond apart and ending now, so each cart's
    // pings are in order and the newest is the last written.
    let first_at = clock.now() - chrono::Duration::milliseconds(case.pings as i64);
    let mut records = Vec::with_capacity(case.pings as usize);
    let mut partitions = Vec::with_capacity(case.pings as usize);
    let mut ids = Vec::with_capacity(case.pings as usize);
    for index in 0..case.pings {
        let cart_index = (index % case.carts.len() as u64) as usize;
        let cart = case.carts[cart_index];
        let event = ping(cart, centre, index, first_at + chrono::Duration::milliseconds(index as i64));
        ids.push(event.event_id);
        partitions.push(ping_partition(cart_index));
        let key = VendorKey { vendor_id: cart };
        records.push(case.codec.encode(&CART_TRACKING, &key, &event).await.context("while encoding a ping")?);
    }
    let producer: FutureProducer =
        kafka::producer_config(&settings.kafka, "bench-tracking").create().context("while creating the producer")?;
    let mut alarms = AlarmTail::start(settings, reported).await?;
    let watch = CommitWatch::start(case.pool, &[TRACKING_GROUP]);
    let watcher = watch.watcher();
    for id in &ids {
        watcher.watch(*id);
    }
    drop(watcher);

    progress.set_length(case.pings);
    progress.set_message("writing the pings (distributor running)");
    let started_s = case.epoch.elapsed().as_secs_f64();
    let started_at = Utc::now();
    let written = Instant::now();
    let produced =
        raw_kafka::produce_each(&producer, CART_TRACKING.name(), &records, |index| Some(partitions[index]), progress)
            .await?;
    let produce_s = written.elapsed().as_secs_f64();

    progress.set_message("MISSING report → RAISED");
    let missing = send_report(case, &producer, &clock, reported, CartTrackingEventKind::Missing).await?;
    // Counted once the report is acknowledged and once its alarm is read:
    // each count comes after its moment, so what it leaves pending is a
    // lower bound of the backlog then.
    let pending = |applied: u64| produced.records.saturating_sub(applied);
    let pings_pending_at_report = pending(effects::count_applied(case.pool, TRACKING_GROUP, &ids).await?);
    let raised = alarms.next(CartAlarmState::Raised, None, case.wait).await;
    let mut error = None;
    let mut pings_pending_at_alarm = 0;
    let missing_timing = match &raised {
        Some((alarm, seen)) => {
            pings_pending_at_alarm = pending(effects::count_applied(case.pool, TRACKING_GROUP, &ids).await?);
            Some(timing(&clock, alarm, missing.1, *seen))
        }
        None => {
            error = Some(format!("no RAISED alarm for the MISSING report within {} s", case.wait.as_secs()));
            None
        }
    };

    let mut found_timing = None;
    if let Some((alarm, _)) = &raised {
        progress.set_message("FOUND report → CLEARED");
        let found = send_report(case, &producer, &clock, reported, CartTrackingEventKind::Found).await?;
        match alarms.next(CartAlarmState::Cleared, Some(alarm.incident_id), case.wait).await {
            Some((cleared, seen)) => found_timing = Some(timing(&clock, &cleared, found.1, seen)),
            None => error = Some(format!("the bench's missing-cart incident {} was not cleared", alarm.incident_id)),
        }
    }
    alarms.stop();

    progress.set_message("waiting for the pings to be applied");
    let observed = watch.finish(case.wait).await?;
    let seen = observed.seen.first().cloned().unwrap_or_default();
    let last = observed.last_commit(0);
    let first = seen.values().min().copied();
    let drain_s = last.map(|last| (millis_between(started_at, last) / 1000.0).max(0.0));
    let steady_per_s = match (first, last) {
        // A span under 10 ms says nothing about a rate.
        (Some(first), Some(last)) => {
            let span = millis_between(first, last) / 1000.0;
            (span > 0.01).then(|| seen.len() as f64 / span)
        }
        _ => None,
    };
    Ok(TrackingRun {
        pings: produced.records,
        carts: case.carts.len(),
        max_batch: settings.tracking.max_batch,
        produce_s,
        applied: seen.len() as u64,
        drain_s,
        pings_per_s: drain_s.map(|seconds| produced.records as f64 / seconds.max(1e-9)),
        steady_per_s,
        peak_lag: 0,
        commit_poll: Some(observed.cycle),
        pings_pending_at_report,
        pings_pending_at_alarm,
        missing: missing_timing,
        found: found_timing,
        error,
        http: None,
        started_s,
        ended_s: case.epoch.elapsed().as_secs_f64(),
    })
}

/// Writes a report on the report lane; returns it with the instant just
/// before it was written.
async fn send_report(
    case: &Case<'_>,
    producer: &FutureProducer,
    clock: &Clock,
    cart: Uuid,
    kind: CartTrackingEventKind,
) -> anyhow::Result<(CartTrackingEvent, Instant)> {
    let event = report(cart, kind, clock.now());
    let (key, value) = case
        .codec
        .encode(&CART_TRACKING, &VendorKey { vendor_id: cart }, &event)
        .await
        .context("while encoding a report")?;
    let sent = Instant::now();
    let record = FutureRecord::to(CART_TRACKING.name()).key(&key).payload(&value).partition(CART_REPORT_PARTITION);
    producer.send(record, KAFKA_TIMEOUT).await.map_err(|(error, _)| error).context("while writing a cart report")?;
    Ok((event, sent))
}

/// A report's alarm: decided − evidence in real time, and written → read back.
fn timing(clock: &Clock, alarm: &CartAlarm, written: Instant, seen: Instant) -> ReportTiming {
    ReportTiming {
        decided_ms: clock.real_duration(alarm.decided_at - alarm.evidence_at).as_secs_f64() * 1000.0,
        seen_ms: seen.saturating_duration_since(written).as_secs_f64() * 1000.0,
    }
}

/// Reads `mamochi.cart-alarms` from its end as it was before the reports,
/// keeping one cart's REPORTED_MISSING alarms with the instant each was read.
struct AlarmTail {
    alarms: mpsc::UnboundedReceiver<(CartAlarm, Instant)>,
    task: tokio::task::JoinHandle<()>,
}

impl AlarmTail {
    async fn start(settings: &Settings, cart: Uuid) -> anyhow::Result<Self> {
        let kafka_settings = settings.kafka.clone();
        // The current ends, read now: `Offset::End` would be resolved by
        // librdkafka later, and an alarm written in between would be missed.
        let start = tokio::task::spawn_blocking(move || -> anyhow::Result<TopicPartitionList> {
            let reader: BaseConsumer = kafka::client_config(&kafka_settings, "bench-alarms").create()?;
            let mut start = TopicPartitionList::new();
            for partition in 0..CART_ALARMS.info.partitions {
                let (_, high) = reader.fetch_watermarks(CART_ALARMS.name(), partition, KAFKA_TIMEOUT)?;
                start.add_partition_offset(CART_ALARMS.name(), partition, Offset::Offset(high))?;
            }
            Ok(start)
        })
        .await
        .context("the alarm offsets task ended abnormally")?
        .context("while reading the ends of the cart-alarms topic")?;
        let consumer: StreamConsumer = kafka::client_config(&settings.kafka, "bench-alarms")
            .set("group.id", format!("bench-alarms-{}", Uuid::new_v4().simple()))
            .set("enable.auto.commit", "false")
            .create()
            .context("while creating the alarm reader")?;
        consumer.assign(&start).context("while assigning the cart-alarms partitions")?;
        let codec = EventCodec::new(&settings.registry.url);
        let (sender, alarms) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let Ok(message) = consumer.recv().await else { continue };
                let read = Instant::now();
                let Ok(alarm) = codec.decode::<CartAlarm>(message.payload()).await else { continue };
                let ours = alarm.vendor_id == cart && alarm.cause == CartAlarmCause::ReportedMissing;
                if ours && sender.send((alarm, read)).is_err() {
                    return;
                }
            }
        });
        Ok(Self { alarms, task })
    }

    /// The next alarm in `state` (of `incident`, if given), or `None` after `within`.
    async fn next(
        &mut self,
        state: CartAlarmState,
        incident: Option<Uuid>,
        within: Duration,
    ) -> Option<(CartAlarm, Instant)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (alarm, read) = tokio::time::timeout_at(deadline, self.alarms.recv()).await.ok()??;
            if alarm.state == state && incident.is_none_or(|incident| alarm.incident_id == incident) {
                return Some((alarm, read));
            }
        }
    }

    fn stop(self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_never_take_the_report_lane_and_spread_over_the_others() {
        let used: std::collections::BTreeSet<i32> = (0..12).map(ping_partition).collect();

        assert!(!used.contains(&CART_REPORT_PARTITION));
        assert_eq!(used.len(), (CART_TRACKING.info.partitions - 1) as usize, "{used:?}");
        assert_eq!(ping_partition(4), ping_partition(4), "one cart, one partition");
    }

    #[test]
    fn bench_pings_stay_inside_the_carts_area() {
        let centre = mamochi_rules::comuna::centre(crate::identity::COMUNA).expect("the bench comuna has a centre");
        for index in [0, 99, 100, 199, 10_000] {
            let event = ping(Uuid::new_v4(), (centre.point.latitude, centre.point.longitude), index, Utc::now());
            let at = mamochi_rules::geo::Point {
                latitude: event.latitude.expect("latitude"),
                longitude: event.longitude.expect("longitude"),
            };
            assert!(mamochi_rules::geo::distance_m(at, centre.point) < 200.0, "{event:?}");
        }
    }
}
