//! The distributor's cart tracking on the real stack: reports and pings go to
//! `mamochi.cart-tracking` (reports on partition 0, pings on 1..=3), sales to
//! `mamochi.sales`; incidents are read from PostgreSQL and the alarms and
//! their emails back from Kafka.
//!
//! The fixture members live in Santiago (comuna centre -33.4378, -70.6505).

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::sql_types::{Double, Nullable, Text, Timestamptz};
use diesel::OptionalExtension;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use mamochi_common::{kafka, Settings};
use mamochi_distributor::derived::derived_id;
use mamochi_distributor::service::TRACKING_GROUP;
use mamochi_events::codec::EventCodec;
use mamochi_events::publish::publish;
use mamochi_events::topics::{CART_ALARMS, CART_REPORT_PARTITION, CART_TRACKING, EMAIL_REQUESTS, SALES};
use mamochi_events::{
    CartAlarm, CartAlarmCause, CartAlarmState, CartTrackingEvent, CartTrackingEventKind, EmailRequested, PaymentMethod,
    SaleLocation, SaleRecorded, VendorKey,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use support::{applied_count, eventually, read_to_end, Running, Vendor, SERIAL};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(90);
const BACKLOG: usize = 10_000;
/// Tracking events per transaction while the backlog drains.
const DRAIN_BATCH: usize = 20;
/// The fixture comuna's centre.
const SANTIAGO: (f64, f64) = (-33.4378, -70.6505);
/// 0.27° of latitude south of it: about 30 km.
const THIRTY_KM_SOUTH: (f64, f64) = (-33.4378 - 0.27, -70.6505);

fn ping(vendor_id: Uuid, (latitude, longitude): (f64, f64), occurred_at: DateTime<Utc>) -> CartTrackingEvent {
    CartTrackingEvent {
        event_id: Uuid::new_v4(),
        vendor_id,
        kind: CartTrackingEventKind::Location,
        occurred_at,
        latitude: Some(latitude),
        longitude: Some(longitude),
        accuracy_m: Some(15.0),
        note: None,
        reported_by: "vendor".to_string(),
    }
}

fn report(vendor_id: Uuid, kind: CartTrackingEventKind, note: &str) -> CartTrackingEvent {
    CartTrackingEvent {
        event_id: Uuid::new_v4(),
        vendor_id,
        kind,
        occurred_at: Utc::now(),
        latitude: None,
        longitude: None,
        accuracy_m: None,
        note: Some(note.to_string()),
        reported_by: "vendor".to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, QueryableByName)]
struct Incident {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    incident_id: Uuid,
    #[diesel(sql_type = Text)]
    cause: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    cleared_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, QueryableByName)]
struct PositionRow {
    #[diesel(sql_type = Nullable<Double>)]
    latitude: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    longitude: Option<f64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    occurred_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_sale_at: Option<DateTime<Utc>>,
}

struct Harness {
    settings: Settings,
    pool: mamochi_common::db::PgPool,
    codec: EventCodec,
    producer: FutureProducer,
}

impl Harness {
    fn new(settings: Settings) -> Self {
        let pool = support::pool(&settings);
        let codec = EventCodec::new(&settings.registry.url);
        let producer = kafka::producer(&settings.kafka, "test").expect("producer");
        Self { settings, pool, codec, producer }
    }

    /// Produces `events` to `partition` of the tracking topic, in order, and
    /// waits for every acknowledgement.
    async fn track(&self, partition: i32, events: &[CartTrackingEvent]) {
        let mut encoded = Vec::with_capacity(events.len());
        for event in events {
            let key = VendorKey { vendor_id: event.vendor_id };
            encoded.push(self.codec.encode(&CART_TRACKING, &key, event).await.expect("event encodes"));
        }
        let mut deliveries = Vec::with_capacity(encoded.len());
        for (key, payload) in &encoded {
            loop {
                let record = FutureRecord::to(CART_TRACKING.name()).key(key).payload(payload).partition(partition);
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err((error, _)) => panic!("event not enqueued: {error}"),
                }
            }
        }
        for delivery in futures::future::join_all(deliveries).await {
            delivery.expect("delivery reported").expect("event acknowledged");
        }
    }

    /// A ping of one cart: always partition 1, so one cart's pings keep
    /// their order, as the gateway keeps them on one partition by cart.
    async fn ping(&self, event: &CartTrackingEvent) {
        self.track(1, std::slice::from_ref(event)).await;
    }

    async fn sell(&self, vendor_id: Uuid) {
        self.sell_at(vendor_id, None).await;
    }

    /// Sells one serving now, from `location` if given; returns the sale.
    async fn sell_at(&self, vendor_id: Uuid, location: Option<(f64, f64)>) -> SaleRecorded {
        let now = Utc::now();
        let sale = SaleRecorded {
            sale_id: Uuid::new_v4(),
            vendor_id,
            quantity: 1,
            unit_price_clp: 1_500,
            total_clp: 1_500,
            payment_method: PaymentMethod::Cash,
            occurred_at: now,
            recorded_at: now,
            location: location.map(|(latitude, longitude)| SaleLocation { latitude, longitude, accuracy_m: Some(8.0) }),
        };
        publish(&self.producer, &self.codec, &SALES, &VendorKey { vendor_id }, &sale, None)
            .await
            .expect("sale acknowledged");
        sale
    }

    /// The cart's stored position and last sale.
    async fn cart_tracking_row(&self, vendor_id: Uuid) -> Option<PositionRow> {
        let mut conn = self.pool.get().await.expect("connection");
        diesel::sql_query(
            "SELECT p.latitude, p.longitude, p.occurred_at, c.last_sale_at \
             FROM carts c LEFT JOIN cart_positions p ON p.vendor_id = c.vendor_id WHERE c.vendor_id = $1",
        )
        .bind::<diesel::sql_types::Uuid, _>(vendor_id)
        .get_result(&mut conn)
        .await
        .optional()
        .expect("position")
    }

    /// The cart's incidents, by the time of the evidence that opened them
    /// (the test's own ping and report times; `opened_at` is the clock of
    /// whichever distributor on the stack decided, which need not be ours).
    async fn incidents(&self, vendor_id: Uuid) -> Vec<Incident> {
        let mut conn = self.pool.get().await.expect("connection");
        diesel::sql_query(
            "SELECT incident_id, cause, cleared_at FROM cart_incidents WHERE vendor_id = $1 ORDER BY evidence_at, incident_id",
        )
        .bind::<diesel::sql_types::Uuid, _>(vendor_id)
        .load(&mut conn)
        .await
        .expect("incidents")
    }

    /// Waits until the cart's incidents satisfy `check`.
    async fn incidents_until(&self, vendor_id: Uuid, what: &str, check: impl Fn(&[Incident]) -> bool) -> Vec<Incident> {
        eventually(WAIT, what, || async {
            let incidents = self.incidents(vendor_id).await;
            check(&incidents).then_some(incidents)
        })
        .await
    }

    /// The cart's alarms on Kafka, once every derived record is produced.
    async fn alarms(&self, vendor_id: Uuid) -> Vec<CartAlarm> {
        support::all_relayed(&self.pool).await;
        read_to_end(&self.settings, &self.codec, &CART_ALARMS)
            .await
            .into_iter()
            .filter(|a| a.vendor_id == vendor_id)
            .collect()
    }

    /// The email requests with the given message ids, once every derived
    /// record is produced.
    async fn emails(&self, ids: &[Uuid]) -> Vec<EmailRequested> {
        support::all_relayed(&self.pool).await;
        read_to_end(&self.settings, &self.codec, &EMAIL_REQUESTS)
            .await
            .into_iter()
            .filter(|email| ids.contains(&email.message_id))
            .collect()
    }

    /// How many of `event_ids` the tracking consumer applied.
    async fn tracked(&self, event_ids: &[Uuid]) -> i64 {
        applied_count(&self.pool, TRACKING_GROUP, event_ids).await
    }
}

fn open_of(incidents: &[Incident], cause: &str) -> Vec<Incident> {
    incidents.iter().filter(|i| i.cause == cause && i.cleared_at.is_none()).cloned().collect()
}

/// Every alarm of `incident`, as (state, cause).
fn states(alarms: &[CartAlarm], incident: Uuid) -> Vec<(CartAlarmState, CartAlarmCause)> {
    alarms.iter().filter(|a| a.incident_id == incident).map(|a| (a.state, a.cause)).collect()
}

/// The four emails of an incident, vendor and staff, raised and cleared.
fn email_ids(incident: Uuid) -> [Uuid; 4] {
    ["raised-vendor", "raised-staff", "cleared-vendor", "cleared-staff"].map(|label| derived_id(label, incident))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_report_behind_ten_thousand_pings_is_raised_within_a_second_and_found_clears_it() {
    let _serial = SERIAL.lock().await;
    // Arrange: 10,000 pings from twenty carts inside their area already on
    // partitions 1..=3, then the missing report on partition 0, all before
    // the distributor starts.
    let mut settings = support::settings();
    // Small batches stretch the backlog's drain over seconds, so the found
    // report below arrives while most pings still wait in the consumer: only
    // the report lane lets it overtake them.
    settings.tracking.max_batch = DRAIN_BATCH;
    let h = Harness::new(settings);
    let mut pinging = Vec::new();
    for _ in 0..20 {
        pinging.push(support::vendor_with_cart(&h.pool, 10).await);
    }
    let missing: Vendor = support::vendor_with_cart(&h.pool, 10).await;
    let start = Utc::now() - chrono::Duration::seconds(BACKLOG as i64);
    let backlog: Vec<CartTrackingEvent> = (0..BACKLOG)
        .map(|n| ping(pinging[n % pinging.len()].id, SANTIAGO, start + chrono::Duration::milliseconds(n as i64)))
        .collect();
    let backlog_ids: Vec<Uuid> = backlog.iter().map(|event| event.event_id).collect();
    for partition in 1..=3 {
        let share: Vec<_> =
            backlog.iter().filter(|event| (event.vendor_id.as_u128() % 3) as i32 + 1 == partition).cloned().collect();
        h.track(partition, &share).await;
    }
    let reported = report(missing.id, CartTrackingEventKind::Missing, "se lo llevaron desde la plaza");
    h.track(CART_REPORT_PARTITION, std::slice::from_ref(&reported)).await;

    // Act: start the distributor and time it from ready to the incident.
    let service = Running::start(&h.settings).await;
    let ready_deadline = Instant::now() + WAIT;
    while support::get(service.ops_port, "/readyz").await.0 != 200 {
        assert!(Instant::now() < ready_deadline, "the distributor became ready");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready = Instant::now();
    let (incident, latency, pings_applied) =
        eventually(Duration::from_secs(10), "the missing report's incident", || async {
            let open = open_of(&h.incidents(missing.id).await, "REPORTED_MISSING");
            let latency = ready.elapsed();
            match open.as_slice() {
                [incident] => Some((incident.clone(), latency, h.tracked(&backlog_ids).await)),
                _ => None,
            }
        })
        .await;
    println!(
        "REPORTED_MISSING committed {latency:?} after the distributor was ready; {pings_applied} of {BACKLOG} pings applied by then"
    );

    // Assert: within a second, ahead of the backlog.
    assert!(latency < Duration::from_secs(1), "the report waited {latency:?}");
    assert!(pings_applied < BACKLOG as i64, "the report overtook the backlog ({pings_applied} pings applied)");

    // Act: the cart is found, reported while the backlog is being applied.
    eventually(WAIT, "the backlog to be draining", || async {
        (h.tracked(&backlog_ids).await >= (DRAIN_BATCH * 10) as i64).then_some(())
    })
    .await;
    let found = report(missing.id, CartTrackingEventKind::Found, "estaba en la otra esquina");
    h.track(CART_REPORT_PARTITION, std::slice::from_ref(&found)).await;
    let produced = Instant::now();

    // Assert: cleared within a second, ahead of the rest of the backlog.
    let (waited, pings_applied) = eventually(Duration::from_secs(10), "the incident to clear", || async {
        let incidents = h.incidents(missing.id).await;
        let waited = produced.elapsed();
        let cleared = incidents.iter().any(|i| i.incident_id == incident.incident_id && i.cleared_at.is_some());
        match cleared {
            true => Some((waited, h.tracked(&backlog_ids).await)),
            false => None,
        }
    })
    .await;
    println!("FOUND committed {waited:?} after it was produced; {pings_applied} of {BACKLOG} pings applied by then");
    assert!(waited < Duration::from_secs(1), "the found report waited {waited:?}");
    assert!(pings_applied < BACKLOG as i64, "the found report overtook the backlog ({pings_applied} pings applied)");

    // Assert: one RAISED and one CLEARED on Kafka; two emails each.
    let alarms = h.alarms(missing.id).await;
    assert_eq!(
        states(&alarms, incident.incident_id),
        vec![
            (CartAlarmState::Raised, CartAlarmCause::ReportedMissing),
            (CartAlarmState::Cleared, CartAlarmCause::ReportedMissing)
        ],
        "{alarms:?}"
    );
    let raised = alarms.iter().find(|a| a.state == CartAlarmState::Raised).expect("raised");
    assert_eq!(raised.evidence_at.timestamp_millis(), reported.occurred_at.timestamp_millis());
    assert!(raised.detail.contains("se lo llevaron desde la plaza"), "{}", raised.detail);
    let ids = email_ids(incident.incident_id);
    let emails = h.emails(&ids).await;
    for id in ids {
        assert_eq!(emails.iter().filter(|email| email.message_id == id).count(), 1, "email {id}: {emails:?}");
    }
    let to: HashSet<&str> = emails.iter().map(|email| email.to.as_str()).collect();
    assert_eq!(to, HashSet::from([missing.email.as_str(), h.settings.tracking.staff_email.as_str()]));
    assert!(emails
        .iter()
        .filter(|e| e.category == "cart_alarm")
        .all(|e| e.subject.starts_with("MAMOCHI: alarma de carro")));
    assert!(emails
        .iter()
        .filter(|e| e.category == "cart_alarm_cleared")
        .all(|e| e.subject.starts_with("MAMOCHI: carro ubicado")));
    // The backlog's carts were inside their area all along.
    for vendor in &pinging {
        assert!(h.incidents(vendor.id).await.is_empty(), "no incident for a cart at home");
    }
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cart_far_from_its_comuna_raises_one_alarm_per_trip_away() {
    let _serial = SERIAL.lock().await;
    // Arrange: a cart of Santiago, and the distributor running.
    let h = Harness::new(support::settings());
    assert_eq!(h.settings.tracking.radius_m, 8_000.0);
    let vendor = support::vendor_with_cart(&h.pool, 10).await;
    let service = Running::start(&h.settings).await;
    let t0 = Utc::now() - chrono::Duration::seconds(60);
    let at = |seconds: i64| t0 + chrono::Duration::seconds(seconds);

    // Act: a ping 30 km away.
    h.ping(&ping(vendor.id, THIRTY_KM_SOUTH, at(0))).await;

    // Assert: one OUT_OF_AREA incident.
    let first =
        h.incidents_until(vendor.id, "the out-of-area incident", |i| !open_of(i, "OUT_OF_AREA").is_empty()).await;
    assert_eq!(first.len(), 1, "{first:?}");

    // Act: three more pings from afar.
    let more: Vec<_> = (1..=3).map(|n| ping(vendor.id, THIRTY_KM_SOUTH, at(n))).collect();
    for event in &more {
        h.ping(event).await;
    }

    // Assert: once they are applied, still the one incident.
    let more_ids: Vec<Uuid> = more.iter().map(|event| event.event_id).collect();
    eventually(WAIT, "the further pings to be applied", || async { (h.tracked(&more_ids).await == 3).then_some(()) })
        .await;
    assert_eq!(h.incidents(vendor.id).await, first, "no second alarm while still away");

    // Act: back home.
    h.ping(&ping(vendor.id, SANTIAGO, at(10))).await;

    // Assert: cleared.
    h.incidents_until(vendor.id, "the incident to clear", |i| i.len() == 1 && i[0].cleared_at.is_some()).await;

    // Act: away again.
    h.ping(&ping(vendor.id, THIRTY_KM_SOUTH, at(20))).await;

    // Assert: a second, distinct incident; on Kafka RAISED, CLEARED, RAISED.
    let both = h.incidents_until(vendor.id, "a second incident", |i| i.len() == 2).await;
    assert_ne!(both[0].incident_id, both[1].incident_id);
    assert_eq!(open_of(&both, "OUT_OF_AREA"), vec![both[1].clone()]);
    let alarms = h.alarms(vendor.id).await;
    let sequence: Vec<(Uuid, CartAlarmState)> = alarms.iter().map(|a| (a.incident_id, a.state)).collect();
    assert_eq!(
        sequence,
        vec![
            (both[0].incident_id, CartAlarmState::Raised),
            (both[0].incident_id, CartAlarmState::Cleared),
            (both[1].incident_id, CartAlarmState::Raised),
        ],
        "{alarms:?}"
    );
    let distance = alarms[0].distance_m.expect("the distance is given");
    assert!((29_000.0..31_000.0).contains(&distance), "{distance}");
    assert!(alarms.iter().all(|a| a.cause == CartAlarmCause::OutOfArea));
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cart_that_sold_and_went_quiet_raises_one_silence_alarm_and_a_ping_clears_it() {
    let _serial = SERIAL.lock().await;
    // Arrange: silence after 2 s, checked every second, at any hour.
    let mut settings = support::settings();
    settings.tracking.silence_after_secs = 2;
    settings.tracking.sold_within_secs = 3600;
    settings.tracking.check_interval_secs = 1;
    settings.tracking.working_hours_start = 0;
    settings.tracking.working_hours_end = 24;
    let h = Harness::new(settings);
    let quiet = support::vendor_with_cart(&h.pool, 10).await;
    let later = support::vendor_with_cart(&h.pool, 10).await;
    let untracked = support::vendor_with_cart(&h.pool, 10).await;
    let service = Running::start(&h.settings).await;

    // Act: a cart that never reported a position sells; once its sale is
    // applied, a tracked cart reports from home, sells, then says nothing.
    h.sell(untracked.id).await;
    eventually(WAIT, "the untracked cart's sale", || async {
        h.cart_tracking_row(untracked.id).await.filter(|row| row.last_sale_at.is_some()).map(|_| ())
    })
    .await;
    h.ping(&ping(quiet.id, SANTIAGO, Utc::now())).await;
    h.sell(quiet.id).await;

    // Assert: one SILENT incident.
    let silent = h.incidents_until(quiet.id, "the silence incident", |i| !open_of(i, "SILENT").is_empty()).await;
    assert_eq!(silent.len(), 1, "{silent:?}");

    // Another tracked cart reports, sells now and falls silent two seconds
    // later: once its incident is open, checks that began after every sale
    // above was applied have passed over the still-silent first cart and the
    // cart that sold without ever reporting a position.
    h.ping(&ping(later.id, SANTIAGO, Utc::now())).await;
    h.sell(later.id).await;
    h.incidents_until(later.id, "the later cart's silence", |i| !open_of(i, "SILENT").is_empty()).await;
    assert_eq!(h.incidents(quiet.id).await, silent, "still one incident for the first silence");
    assert!(h.incidents(untracked.id).await.is_empty(), "a cart that never reported a position is not silent");

    // Act: the cart reports where it is.
    h.ping(&ping(quiet.id, SANTIAGO, Utc::now())).await;

    // Assert: cleared; one RAISED and one CLEARED for it on Kafka, two emails each.
    let incident = silent[0].incident_id;
    h.incidents_until(quiet.id, "the silence to clear", |i| {
        i.iter().any(|found| found.incident_id == incident && found.cleared_at.is_some())
    })
    .await;
    let alarms = h.alarms(quiet.id).await;
    assert_eq!(
        states(&alarms, incident),
        vec![(CartAlarmState::Raised, CartAlarmCause::Silent), (CartAlarmState::Cleared, CartAlarmCause::Silent)],
        "{alarms:?}"
    );
    let emails = h.emails(&email_ids(incident)).await;
    assert_eq!(emails.len(), 4, "{emails:?}");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_with_a_location_is_the_carts_position_and_an_older_ping_does_not_replace_it() {
    let _serial = SERIAL.lock().await;
    // Arrange: a cart, and the distributor running.
    let h = Harness::new(support::settings());
    let vendor = support::vendor_with_cart(&h.pool, 10).await;
    let service = Running::start(&h.settings).await;

    // Act: a sale from the plaza.
    let sale = h.sell_at(vendor.id, Some(SANTIAGO)).await;

    // Assert: its place and time are the cart's position and last sale.
    let stored = eventually(WAIT, "the sale's position", || async {
        h.cart_tracking_row(vendor.id).await.filter(|row| row.occurred_at.is_some())
    })
    .await;
    let sold = sale.occurred_at.timestamp_millis();
    assert_eq!((stored.latitude, stored.longitude), (Some(SANTIAGO.0), Some(SANTIAGO.1)));
    assert_eq!(stored.occurred_at.map(|at| at.timestamp_millis()), Some(sold));
    assert_eq!(stored.last_sale_at.map(|at| at.timestamp_millis()), Some(sold));

    // Act: a ping taken a minute before the sale arrives after it.
    let stale = ping(vendor.id, THIRTY_KM_SOUTH, sale.occurred_at - chrono::Duration::seconds(60));
    h.ping(&stale).await;

    // Assert: once applied, the sale's position stands and nothing is raised.
    eventually(WAIT, "the stale ping to be applied", || async {
        (h.tracked(&[stale.event_id]).await == 1).then_some(())
    })
    .await;
    assert_eq!(h.cart_tracking_row(vendor.id).await, Some(stored));
    assert!(h.incidents(vendor.id).await.is_empty(), "an older position decides nothing");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cart_of_a_comuna_without_a_known_centre_is_never_out_of_area() {
    let _serial = SERIAL.lock().await;
    // Arrange: a member whose comuna the table does not list.
    let h = Harness::new(support::settings());
    let vendor = support::vendor_with_cart(&h.pool, 10).await;
    let mut conn = h.pool.get().await.expect("connection");
    diesel::sql_query("UPDATE members SET comuna = 'Villa Inventada' WHERE member_id = $1")
        .bind::<diesel::sql_types::Uuid, _>(vendor.id)
        .execute(&mut conn)
        .await
        .expect("comuna set");
    let service = Running::start(&h.settings).await;

    // Act: a ping 30 km from Santiago.
    let far = ping(vendor.id, THIRTY_KM_SOUTH, Utc::now());
    h.ping(&far).await;

    // Assert: stored once applied, and no incident.
    eventually(WAIT, "the ping to be applied", || async { (h.tracked(&[far.event_id]).await == 1).then_some(()) })
        .await;
    let stored = h.cart_tracking_row(vendor.id).await.expect("cart");
    assert_eq!((stored.latitude, stored.longitude), (Some(THIRTY_KM_SOUTH.0), Some(THIRTY_KM_SOUTH.1)));
    assert!(h.incidents(vendor.id).await.is_empty(), "no out-of-area check without a centre");
    service.stop().await;
}
