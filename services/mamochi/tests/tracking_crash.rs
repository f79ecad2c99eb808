//! The distributor process killed with SIGKILL while cart-tracking incidents
//! are being opened, then started again, ends with exactly one alarm per
//! incident: one RAISED and one CLEARED `CartAlarm` per incident on
//! `mamochi.cart-alarms`, one email request per incident, recipient and
//! step, each delivered once by the notifier, one `cart_incidents` row per
//! incident and none left open. Runs the real binary (`mamochi run
//! distributor`) so the kill is a real process death, between any two steps
//! of a tracking batch or a silence check: before its commit, between the
//! commit and the outbox relay, or between Kafka's acknowledgement and the
//! outbox delete.
//!
//! Twenty carts of Santiago (comuna centre -33.4378, -70.6505): some report
//! from home once, sell and then say nothing (SILENT after
//! `tracking.silence_after_secs`: only a cart with a position can go silent),
//! some ping from 30 km south (OUT_OF_AREA), the rest ping from home. Only
//! the silent carts sell, so no other cart can fall silent while the
//! distributor is down.
//! Other distributors on the shared stack (other tests') read the same topics
//! and database and may decide a step of these incidents: the guarantee
//! covers concurrent instances, so the assertions hold whoever decided.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use mamochi_common::{kafka, Settings};
use mamochi_distributor::derived::derived_id;
use mamochi_distributor::service::TRACKING_GROUP;
use mamochi_events::codec::EventCodec;
use mamochi_events::publish::publish;
use mamochi_events::topics::{CART_ALARMS, CART_TRACKING, EMAIL_REQUESTS, SALES};
use mamochi_events::{
    CartAlarm, CartAlarmCause, CartAlarmState, CartTrackingEvent, CartTrackingEventKind, EmailRequested, PaymentMethod,
    SaleRecorded, VendorKey,
};
use mamochi_testkit::members::{insert_cart, Member};
use mamochi_testkit::processes::Mamochi;
use mamochi_testkit::records::read_to_end;
use mamochi_testkit::wait::eventually;
use mamochi_testkit::{mail, offsets, ports};
use nix::sys::signal::Signal;
use rdkafka::producer::FutureProducer;
use uuid::Uuid;

const HOME_CARTS: usize = 8;
const SILENT_CARTS: usize = 6;
const AWAY_CARTS: usize = 6;
/// Silence after 3 s without a position, checked every second, at any hour.
const SILENCE_AFTER_SECS: u64 = 3;
/// How often every pinging cart reports: well within the silence.
const PING_EVERY: Duration = Duration::from_millis(500);
/// Silent cart n sells at n × STAGGER; away cart n leaves at AWAY_FROM +
/// n × STAGGER: incidents open one after another, so the kill lands between
/// some committed and some not yet.
const STAGGER: Duration = Duration::from_millis(400);
const AWAY_FROM: Duration = Duration::from_millis(2_500);
/// Incidents committed when the kill is sent.
const KILL_AFTER_INCIDENTS: usize = 4;
const WAIT: Duration = Duration::from_secs(120);
/// The fixture comuna's centre, and 0.27° of latitude south of it (30 km).
const SANTIAGO: (f64, f64) = (-33.4378, -70.6505);
const THIRTY_KM_SOUTH: (f64, f64) = (-33.4378 - 0.27, -70.6505);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Pings from home all along.
    Home,
    /// Reports from home once, sells, then sends nothing until told to
    /// report again.
    Silent,
    /// Pings from home, then from 30 km away until told to come back.
    Away,
}

#[derive(Debug, Clone)]
struct Cart {
    id: Uuid,
    email: String,
    role: Role,
    /// Its place among the carts of its role.
    index: u32,
}

impl Cart {
    /// The one cause this cart's scenario raises, if any.
    fn cause(&self) -> Option<&'static str> {
        match self.role {
            Role::Home => None,
            Role::Silent => Some("SILENT"),
            Role::Away => Some("OUT_OF_AREA"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, QueryableByName)]
struct Incident {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    incident_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    vendor_id: Uuid,
    #[diesel(sql_type = Text)]
    cause: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    cleared_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

fn start_distributor(settings: &Settings, staff_email: &str) -> Mamochi {
    let ops_port = ports::free_port();
    let envs = [
        ("MAMOCHI__KAFKA__GROUP_PREFIX", settings.kafka.group_prefix.clone()),
        ("MAMOCHI__DISTRIBUTOR__OPS_LISTEN", format!("127.0.0.1:{ops_port}")),
        ("MAMOCHI__TRACKING__SILENCE_AFTER_SECS", SILENCE_AFTER_SECS.to_string()),
        ("MAMOCHI__TRACKING__SOLD_WITHIN_SECS", "3600".to_string()),
        ("MAMOCHI__TRACKING__CHECK_INTERVAL_SECS", "1".to_string()),
        ("MAMOCHI__TRACKING__WORKING_HOURS_START", "0".to_string()),
        ("MAMOCHI__TRACKING__WORKING_HOURS_END", "24".to_string()),
        // This test's own staff address: every staff email to it is one of ours.
        ("MAMOCHI__TRACKING__STAFF_EMAIL", staff_email.to_string()),
        ("MAMOCHI__LOG__FILTER", "warn".to_string()),
    ];
    Mamochi::spawn(env!("CARGO_BIN_EXE_mamochi"), ["run", "distributor"], &envs).with_ops_port(ops_port)
}

fn start_notifier(settings: &Settings) -> Mamochi {
    let ops_port = ports::free_port();
    let envs = [
        ("MAMOCHI__KAFKA__GROUP_PREFIX", settings.kafka.group_prefix.clone()),
        ("MAMOCHI__NOTIFIER__OPS_LISTEN", format!("127.0.0.1:{ops_port}")),
        ("MAMOCHI__LOG__FILTER", "warn".to_string()),
    ];
    Mamochi::spawn(env!("CARGO_BIN_EXE_mamochi"), ["run", "notifier"], &envs).with_ops_port(ops_port)
}

fn ping(vendor_id: Uuid, (latitude, longitude): (f64, f64)) -> CartTrackingEvent {
    CartTrackingEvent {
        event_id: Uuid::new_v4(),
        vendor_id,
        kind: CartTrackingEventKind::Location,
        occurred_at: Utc::now(),
        latitude: Some(latitude),
        longitude: Some(longitude),
        accuracy_m: Some(15.0),
        note: None,
        reported_by: "vendor".to_string(),
    }
}

/// A cart's pings stay on one partition of 1..=3, as the gateway keeps them.
fn ping_partition(vendor_id: Uuid) -> i32 {
    (vendor_id.as_u128() % 3) as i32 + 1
}

/// Pings every [`PING_EVERY`] from each cart that reports, until `stop`:
/// home carts from home; away carts from 30 km once their turn to leave came,
/// silent carts not at all (their one ping is sent with their sale); every
/// cart from home once `back` is set.
fn start_pinging(
    settings: &Settings,
    carts: Vec<Cart>,
    started: Instant,
    back: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<usize> {
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let codec = EventCodec::new(&settings.registry.url);
    tokio::spawn(async move {
        let mut sent = 0;
        while !AtomicBool::load(&stop, Ordering::SeqCst) {
            let back = AtomicBool::load(&back, Ordering::SeqCst);
            let pings: Vec<CartTrackingEvent> = carts
                .iter()
                .filter_map(|cart| match cart.role {
                    _ if back => Some(ping(cart.id, SANTIAGO)),
                    Role::Home => Some(ping(cart.id, SANTIAGO)),
                    Role::Silent => None,
                    Role::Away if started.elapsed() >= AWAY_FROM + STAGGER * cart.index => {
                        Some(ping(cart.id, THIRTY_KM_SOUTH))
                    }
                    Role::Away => Some(ping(cart.id, SANTIAGO)),
                })
                .collect();
            send_pings(&producer, &codec, &pings).await;
            sent += pings.len();
            tokio::time::sleep(PING_EVERY).await;
        }
        sent
    })
}

async fn send_pings(producer: &FutureProducer, codec: &EventCodec, pings: &[CartTrackingEvent]) {
    futures::future::join_all(pings.iter().map(|event| async move {
        let key = VendorKey { vendor_id: event.vendor_id };
        publish(producer, codec, &CART_TRACKING, &key, event, Some(ping_partition(event.vendor_id))).await
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .expect("pings acknowledged");
}

/// Sells one serving from each silent cart, cart n at n × [`STAGGER`], right
/// after its one ping from home: a cart is tracked, and can fall silent, only
/// once it reported a position.
fn start_selling(settings: &Settings, carts: Vec<Cart>, started: Instant) -> tokio::task::JoinHandle<()> {
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let codec = EventCodec::new(&settings.registry.url);
    tokio::spawn(async move {
        for cart in carts.iter().filter(|cart| cart.role == Role::Silent) {
            let at = started + STAGGER * cart.index;
            tokio::time::sleep(at.saturating_duration_since(Instant::now())).await;
            send_pings(&producer, &codec, &[ping(cart.id, SANTIAGO)]).await;
            let now = Utc::now();
            let sale = SaleRecorded {
                sale_id: Uuid::new_v4(),
                vendor_id: cart.id,
                quantity: 1,
                unit_price_clp: 1_500,
                total_clp: 1_500,
                payment_method: PaymentMethod::Cash,
                occurred_at: now,
                recorded_at: now,
                location: None,
            };
            publish(&producer, &codec, &SALES, &VendorKey { vendor_id: cart.id }, &sale, None)
                .await
                .expect("sale acknowledged");
        }
    })
}

async fn incidents(pool: &PgPool, vendors: &[Uuid]) -> Vec<Incident> {
    let mut conn = pool.get().await.expect("connection");
    diesel::sql_query(
        "SELECT incident_id, vendor_id, cause, cleared_at FROM cart_incidents \
         WHERE vendor_id = ANY($1) ORDER BY opened_at, incident_id",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(vendors)
    .load(&mut conn)
    .await
    .expect("incidents")
}

/// Outbox rows still to be produced that concern these carts or the staff
/// address of this test.
async fn outbox_rows(pool: &PgPool, vendors: &[Uuid], addresses: &[String]) -> i64 {
    let mut conn = pool.get().await.expect("connection");
    let vendors: Vec<String> = vendors.iter().map(Uuid::to_string).collect();
    diesel::sql_query(
        "SELECT count(*) AS count FROM distributor_outbox \
         WHERE record->>'vendor_id' = ANY($1) OR record->>'to' = ANY($2)",
    )
    .bind::<Array<Text>, _>(vendors)
    .bind::<Array<Text>, _>(addresses)
    .get_result::<Count>(&mut conn)
    .await
    .expect("outbox count")
    .count
}

/// How many sent messages in the mail sink carry each Message-ID, counting
/// only files written since `since`.
fn delivered(dir: &Path, since: SystemTime) -> HashMap<Uuid, usize> {
    let mut counts = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return counts };
    for entry in entries.filter_map(Result::ok) {
        let recent = entry.metadata().and_then(|meta| meta.modified()).is_ok_and(|modified| modified >= since);
        if !recent || !entry.file_name().to_string_lossy().ends_with(".eml") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
        let id = mail::header(&text, "Message-ID")
            .and_then(|value| value.strip_prefix('<'))
            .and_then(|value| value.strip_suffix("@mamochi.cl>"))
            .and_then(|value| Uuid::parse_str(value).ok());
        if let Some(id) = id {
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}

/// The four emails of an incident: vendor and staff, raised and cleared.
fn email_ids(incident: Uuid) -> [Uuid; 4] {
    ["raised-vendor", "raised-staff", "cleared-vendor", "cleared-staff"].map(|label| derived_id(label, incident))
}

/// Waits until the tracking group has committed everything on the tracking
/// topic up to its end now: the restarted consumer is live and not behind.
async fn tracking_caught_up(settings: &Settings) {
    let mark = offsets::end_offsets(settings, &CART_TRACKING);
    let group = settings.kafka.group(TRACKING_GROUP);
    offsets::wait_until_committed(settings, &group, &CART_TRACKING, &mark, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_while_incidents_open_then_restart_raises_and_clears_each_incident_once() {
    // Arrange: 20 carts of Santiago; the distributor with a 3 s silence and
    // this test's own staff address; the notifier, to count delivered mail.
    let settings = support::isolated_settings();
    let pool = mamochi_testkit::settings::pool(&settings);
    let staff_email = format!("guardia-{}@test.mamochi.cl", Uuid::new_v4().simple());
    let mut carts = Vec::new();
    for (role, count) in [(Role::Home, HOME_CARTS), (Role::Silent, SILENT_CARTS), (Role::Away, AWAY_CARTS)] {
        for index in 0..count {
            let member = Member::new();
            member.insert(&pool).await;
            insert_cart(&pool, member.id, 10).await;
            carts.push(Cart { id: member.id, email: member.email, role, index: index as u32 });
        }
    }
    let vendors: Vec<Uuid> = carts.iter().map(|cart| cart.id).collect();
    let expected: BTreeSet<(Uuid, &str)> =
        carts.iter().filter_map(|cart| cart.cause().map(|cause| (cart.id, cause))).collect();
    let mut addresses: Vec<String> = carts.iter().map(|cart| cart.email.clone()).collect();
    addresses.push(staff_email.clone());
    let mail_since = SystemTime::now();
    let mut notifier = start_notifier(&settings);
    let mut first = start_distributor(&settings, &staff_email);
    first.wait_ready(WAIT).await;
    notifier.wait_ready(WAIT).await;

    // Act: sales and pings start; SIGKILL once the first incidents committed.
    let started = Instant::now();
    let back = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let pinger = start_pinging(&settings, carts.clone(), started, back.clone(), stop.clone());
    let seller = start_selling(&settings, carts.clone(), started);
    eventually(WAIT, "the first incidents", || async {
        (incidents(&pool, &vendors).await.len() >= KILL_AFTER_INCIDENTS).then_some(())
    })
    .await;
    first.stop(Signal::SIGKILL);
    let killed = Instant::now();
    let at_kill = incidents(&pool, &vendors).await;
    let outbox_at_kill = outbox_rows(&pool, &vendors, &addresses).await;
    let mut second = start_distributor(&settings, &staff_email);
    second.wait_ready(WAIT).await;
    let restart_ready = killed.elapsed();
    println!(
        "killed the distributor {:.2}s into the scenario with {} of {} incidents committed ({}), {outbox_at_kill} \
         outbox rows pending; the restarted one was ready {:.2}s after the kill",
        killed.duration_since(started).as_secs_f64(),
        at_kill.len(),
        expected.len(),
        at_kill.iter().map(|i| i.cause.as_str()).collect::<Vec<_>>().join(", "),
        restart_ready.as_secs_f64()
    );

    // Every incident opens (the rest after the restart), and the restarted
    // consumer has caught up with the pings that kept arriving.
    seller.await.expect("sales sent");
    let opened = eventually(WAIT, "every incident open", || async {
        let open: BTreeSet<(Uuid, String)> =
            incidents(&pool, &vendors).await.into_iter().map(|i| (i.vendor_id, i.cause)).collect();
        let want: BTreeSet<(Uuid, String)> = expected.iter().map(|(v, c)| (*v, c.to_string())).collect();
        want.is_subset(&open).then_some(killed.elapsed())
    })
    .await;
    tracking_caught_up(&settings).await;
    println!(
        "every incident open {:.2}s after the kill; {} raised before it, {} after",
        opened.as_secs_f64(),
        at_kill.len(),
        expected.len() - at_kill.len()
    );

    // Act: the away carts come home and the silent carts report again.
    back.store(true, Ordering::SeqCst);
    let came_back = Instant::now();

    // Wait: every incident cleared, every derived record produced, the
    // tracking group caught up with what was sent by then, every email sent.
    eventually(WAIT, "every incident cleared", || async {
        let all = incidents(&pool, &vendors).await;
        (all.len() >= expected.len() && all.iter().all(|i| i.cleared_at.is_some())).then_some(())
    })
    .await;
    let cleared = came_back.elapsed();
    let settling = Instant::now();
    eventually(WAIT, "the outbox drained of this test's records", || async {
        (outbox_rows(&pool, &vendors, &addresses).await == 0).then_some(())
    })
    .await;
    let final_incidents = incidents(&pool, &vendors).await;
    let every_email: Vec<Uuid> = final_incidents.iter().flat_map(|i| email_ids(i.incident_id)).collect();
    eventually(WAIT, "every email of these incidents delivered", || async {
        let mail = delivered(&mail::mail_dir(), mail_since);
        every_email.iter().all(|id| mail.contains_key(id)).then_some(())
    })
    .await;
    tracking_caught_up(&settings).await;
    let email_mark = offsets::end_offsets(&settings, &EMAIL_REQUESTS);
    let notifier_group = settings.kafka.group(mamochi_notifier::service::GROUP);
    offsets::wait_until_committed(&settings, &notifier_group, &EMAIL_REQUESTS, &email_mark, WAIT).await;
    let settled = settling.elapsed();
    let codec = EventCodec::new(&settings.registry.url);
    let alarms: Vec<CartAlarm> = read_to_end(&settings, &codec, &CART_ALARMS)
        .await
        .into_iter()
        .filter(|a| vendors.contains(&a.vendor_id))
        .collect();
    let emails: Vec<EmailRequested> = read_to_end(&settings, &codec, &EMAIL_REQUESTS)
        .await
        .into_iter()
        .filter(|email| email.category.starts_with("cart_alarm"))
        .collect();
    let mail = delivered(&mail::mail_dir(), mail_since);
    let still_open_after_settle = incidents(&pool, &vendors).await;
    let exit = second.stop_within(Signal::SIGTERM, WAIT).await;
    stop.store(true, Ordering::SeqCst);
    let pings = pinger.await.expect("pinger");
    notifier.stop(Signal::SIGTERM);
    println!(
        "every incident cleared {:.2}s after the carts came back, every email delivered and the groups caught up \
         {:.2}s later; {pings} pings sent, {} alarm records of these carts \
         and {} cart-alarm email requests on the topics",
        cleared.as_secs_f64(),
        settled.as_secs_f64(),
        alarms.len(),
        emails.len()
    );

    // Assert: the kill fell between incidents.
    assert!(!at_kill.is_empty() && at_kill.len() < expected.len(), "killed mid-incidents: {at_kill:?}");
    assert_eq!(exit, Some(0), "the restarted distributor stops cleanly");

    // Assert: one incident row per cart and cause in effect, none other,
    // none left open (also while the pings went on).
    let rows: BTreeSet<(Uuid, &str)> = final_incidents.iter().map(|i| (i.vendor_id, i.cause.as_str())).collect();
    assert_eq!(rows, expected, "exactly the expected (cart, cause) incidents");
    assert_eq!(final_incidents.len(), expected.len(), "one row per incident: {final_incidents:?}");
    assert_eq!(still_open_after_settle, final_incidents, "no incident opened or changed while the test read");
    assert!(final_incidents.iter().all(|i| i.cleared_at.is_some()), "none left open");
    for before in &at_kill {
        assert!(
            final_incidents.iter().any(|after| after.incident_id == before.incident_id),
            "an incident committed before the kill is the one in effect: {before:?}"
        );
    }

    // Assert: per incident exactly one RAISED and one CLEARED record in
    // effect; a record published again is the same record.
    let mut by_event: HashMap<Uuid, &CartAlarm> = HashMap::new();
    let mut republished = 0;
    for alarm in &alarms {
        if let Some(earlier) = by_event.insert(alarm.event_id, alarm) {
            assert_eq!(earlier, alarm, "a re-published alarm is the same record");
            republished += 1;
        }
    }
    let mut incidents_by: BTreeMap<(Uuid, CartAlarmCause, CartAlarmState), BTreeSet<Uuid>> = BTreeMap::new();
    for alarm in by_event.values() {
        incidents_by.entry((alarm.vendor_id, alarm.cause, alarm.state)).or_default().insert(alarm.incident_id);
    }
    let cause_of = |column: &str| match column {
        "SILENT" => CartAlarmCause::Silent,
        "OUT_OF_AREA" => CartAlarmCause::OutOfArea,
        other => panic!("unexpected cause {other}"),
    };
    let mut want_alarms = BTreeMap::new();
    for incident in &final_incidents {
        for state in [CartAlarmState::Raised, CartAlarmState::Cleared] {
            want_alarms
                .insert((incident.vendor_id, cause_of(&incident.cause), state), BTreeSet::from([incident.incident_id]));
        }
    }
    assert_eq!(incidents_by, want_alarms, "one RAISED and one CLEARED per incident, no other alarm");
    assert_eq!(by_event.len(), 2 * expected.len(), "two distinct alarm records per incident");

    // Assert: one email request per incident, recipient and step (distinct
    // message ids), each delivered once. Vendor emails are matched by
    // address; staff emails by message id, because another distributor on
    // the shared stack may decide a step of the same incident (the guarantee
    // covers concurrent instances) and addresses it to its own staff
    // setting, and this test's distributor decides other carts' steps too.
    let vendor_emails: BTreeSet<&str> = carts.iter().map(|cart| cart.email.as_str()).collect();
    let mut wanted_vendor: BTreeMap<Uuid, String> = BTreeMap::new();
    let mut wanted_staff: BTreeSet<Uuid> = BTreeSet::new();
    for incident in &final_incidents {
        let vendor = carts.iter().find(|cart| cart.id == incident.vendor_id).expect("our cart");
        for label in ["raised-vendor", "cleared-vendor"] {
            wanted_vendor.insert(derived_id(label, incident.incident_id), vendor.email.clone());
        }
        for label in ["raised-staff", "cleared-staff"] {
            wanted_staff.insert(derived_id(label, incident.incident_id));
        }
    }
    let alarm_emails: Vec<&EmailRequested> = emails.iter().collect();
    let to_vendors: BTreeMap<Uuid, String> = alarm_emails
        .iter()
        .filter(|email| vendor_emails.contains(email.to.as_str()))
        .map(|email| (email.message_id, email.to.clone()))
        .collect();
    assert_eq!(to_vendors, wanted_vendor, "one email request per incident and step to the vendor");
    let to_staff: BTreeMap<Uuid, BTreeSet<&str>> = alarm_emails
        .iter()
        .filter(|email| wanted_staff.contains(&email.message_id))
        .fold(BTreeMap::new(), |mut by_id, email| {
            by_id.entry(email.message_id).or_default().insert(email.to.as_str());
            by_id
        });
    assert_eq!(
        to_staff.keys().copied().collect::<BTreeSet<_>>(),
        wanted_staff,
        "one staff email per incident and step"
    );
    assert!(
        to_staff.values().all(|to| to.len() == 1 && to.iter().all(|address| !vendor_emails.contains(address))),
        "each staff email has one staff recipient: {to_staff:?}"
    );
    let others = to_staff.values().flatten().filter(|address| **address != staff_email).count();
    assert_eq!(every_email.len(), wanted_vendor.len() + wanted_staff.len());
    for id in &every_email {
        assert_eq!(mail.get(id).copied().unwrap_or(0), 1, "email {id} delivered once");
    }
    let email_records = alarm_emails.iter().filter(|email| every_email.contains(&email.message_id)).count();
    println!(
        "{} incidents ({} raised before the kill, {} after), each raised and cleared once: {} distinct alarms in {} \
         records ({republished} re-published), {} distinct emails each delivered once ({others} staff emails decided by \
         another distributor on the stack), in {email_records} email requests",
        final_incidents.len(),
        at_kill.len(),
        final_incidents.len() - at_kill.len(),
        by_event.len(),
        alarms.len(),
        wanted_vendor.len() + wanted_staff.len()
    );
}
