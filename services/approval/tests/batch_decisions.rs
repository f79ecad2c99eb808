//! Thousands of standard forms, with duplicate RUTs, emails, plates and phones
//! mixed in, are decided in batches exactly as the rules say: every form's
//! outcome and reason equal the ones worked out when the forms were made, and
//! every decision is published. Prints the rate the service decided at.
//!
//! Each case's forms go, in order, to one standard partition, so the order in
//! which the service sees them is known; the cases on different partitions
//! share no RUT, email, plate or phone, so how partitions interleave does not
//! matter. A case's forms are adjacent (the same batch, but for a batch
//! boundary) or, for the "later" cases, a duplicate comes a thousand records
//! behind its original (another batch).

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_approval::rules::{self, Conflicts, Decision};
use mamochi_common::schema::{carts, members, registrations};
use mamochi_common::{db, kafka, Settings};
use mamochi_events::codec::EventCodec;
use mamochi_events::topics;
use mamochi_events::{RegistrationKey, RegistrationSubmitted};
use rdkafka::producer::FutureRecord;
use uuid::Uuid;

/// Cases per standard partition; each case is one to three forms.
const CASES_PER_PARTITION: usize = 450;
const STANDARD_PARTITIONS: [i32; 3] = [1, 2, 3];

/// A RUT, email, plate and phone no member and no pending form holds.
#[derive(Debug, Clone)]
struct Identity {
    rut: String,
    email: String,
    plate: String,
    phone: String,
}

/// Identities that are new to the database (earlier runs left members and
/// pending forms behind; random values could meet them).
async fn fresh_identities(pool: &db::PgPool, count: usize) -> Vec<Identity> {
    let mut conn = pool.get().await.expect("connection");
    let mut fresh: Vec<Identity> = Vec::with_capacity(count);
    while fresh.len() < count {
        let candidates: Vec<Identity> = (0..count - fresh.len() + 64)
            .map(|_| {
                let form = support::form(false);
                Identity { rut: form.rut, email: form.email, plate: form.cart_plate, phone: form.phone }
            })
            .collect();
        let values = |field: fn(&Identity) -> &String| candidates.iter().map(|i| field(i).clone()).collect::<Vec<_>>();
        let (ruts, emails, plates, phones) =
            (values(|i| &i.rut), values(|i| &i.email), values(|i| &i.plate), values(|i| &i.phone));
        let taken: Vec<(String, String, String, String)> = members::table
            .filter(
                members::rut
                    .eq_any(&ruts)
                    .or(members::email.eq_any(&emails))
                    .or(members::cart_plate.eq_any(&plates))
                    .or(members::phone.eq_any(&phones)),
            )
            .select((members::rut, members::email, members::cart_plate, members::phone))
            .load(&mut conn)
            .await
            .expect("members query");
        let pending: Vec<(String, String)> = registrations::table
            .filter(registrations::status.eq_any(["received", "manual_review"]))
            .filter(registrations::rut.eq_any(&ruts).or(registrations::email.eq_any(&emails)))
            .select((registrations::rut, registrations::email))
            .load(&mut conn)
            .await
            .expect("pending query");
        let mut used: HashSet<String> = taken.into_iter().flat_map(|(a, b, c, d)| [a, b, c, d]).collect();
        used.extend(pending.into_iter().flat_map(|(a, b)| [a, b]));
        for identity in fresh.iter() {
            used.extend([identity.rut.clone(), identity.email.clone(), identity.plate.clone(), identity.phone.clone()]);
        }
        for identity in candidates {
            let values = [&identity.rut, &identity.email, &identity.plate, &identity.phone];
            if fresh.len() < count && values.iter().all(|value| !used.contains(*value)) {
                used.extend(values.into_iter().cloned());
                fresh.push(identity);
            }
        }
    }
    fresh
}

/// What the rules must say about a form, worked out from how it was made.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Expected {
    status: &'static str,
    reason: Option<String>,
}

impl Expected {
    fn of(decision: Decision) -> Self {
        match decision {
            Decision::Approved => Self { status: "approved", reason: None },
            Decision::Rejected(reason) => Self { status: "rejected", reason: Some(reason) },
            Decision::ManualReview(reason) => Self { status: "manual_review", reason: Some(reason) },
        }
    }

    /// The outcome of a valid standard form with exactly this conflict.
    fn with(conflicts: Conflicts) -> Self {
        Self::of(rules::decide(rules::Form { rut: "12345678-5", paid: false, payment_reference: None }, conflicts))
    }
}

/// Forms in the order one partition receives them, each with its expectation.
#[derive(Default)]
struct Lane {
    forms: Vec<(RegistrationSubmitted, Expected)>,
    /// Duplicates sent after everything else: another batch than the original.
    later: Vec<(RegistrationSubmitted, Expected)>,
}

fn form_of(identity: &Identity) -> RegistrationSubmitted {
    let mut form = support::form(false);
    form.rut = identity.rut.clone();
    form.email = identity.email.clone();
    form.cart_plate = identity.plate.clone();
    form.phone = identity.phone.clone();
    form
}

/// Appends case number `case` to `lane`, drawing fresh identities.
fn add_case(lane: &mut Lane, case: usize, identities: &mut impl Iterator<Item = Identity>) {
    let approved = Expected::with(Conflicts::default());
    let rut_taken = Expected::with(Conflicts { member_with_rut: true, ..Conflicts::default() });
    let email_taken = Expected::with(Conflicts { member_with_email: true, ..Conflicts::default() });
    let pending = Expected::with(Conflicts { earlier_pending_with_rut_or_email: true, ..Conflicts::default() });
    let plate_taken = Expected::with(Conflicts { member_with_plate: true, ..Conflicts::default() });
    let phone_taken = Expected::with(Conflicts { member_with_phone: true, ..Conflicts::default() });
    let mut next = || identities.next().expect("enough fresh identities");
    let first = next();
    let original = form_of(&first);
    // The duplicate shares one field with `first`; the rest is its own.
    let duplicate = |field: &dyn Fn(&mut Identity), next: &mut dyn FnMut() -> Identity| {
        let mut own = next();
        field(&mut own);
        form_of(&own)
    };
    match case % 10 {
        0 | 1 => lane.forms.push((original, approved)),
        2 => {
            let twin = duplicate(&|own| own.rut = first.rut.clone(), &mut next);
            lane.forms.extend([(original, approved), (twin, rut_taken)]);
        }
        3 => {
            let twin = duplicate(&|own| own.email = first.email.clone(), &mut next);
            lane.forms.extend([(original, approved), (twin, email_taken)]);
        }
        4 => {
            let twin = duplicate(&|own| own.plate = first.plate.clone(), &mut next);
            lane.forms.extend([(original, approved), (twin, plate_taken)]);
        }
        5 => {
            let twin = duplicate(&|own| own.phone = first.phone.clone(), &mut next);
            lane.forms.extend([(original, approved), (twin, phone_taken)]);
        }
        6 => {
            // A form waiting for staff (its cart is a member's) blocks a
            // later form with its RUT.
            let waiting = duplicate(&|own| own.plate = first.plate.clone(), &mut next);
            let waiting_rut = waiting.rut.clone();
            let blocked = duplicate(&|own| own.rut = waiting_rut.clone(), &mut next);
            lane.forms.extend([(original, approved), (waiting, plate_taken), (blocked, pending)]);
        }
        7 => {
            let twin = duplicate(&|own| own.rut = first.rut.clone(), &mut next);
            lane.forms.push((original, approved));
            lane.later.push((twin, rut_taken));
        }
        8 => {
            let twin = duplicate(&|own| own.phone = first.phone.clone(), &mut next);
            lane.forms.push((original, approved));
            lane.later.push((twin, phone_taken));
        }
        _ => {
            let mut invalid = original;
            let (body, check) = invalid.rut.split_once('-').expect("normalised RUT");
            let wrong = if check == "0" { "1" } else { "0" };
            invalid.rut = format!("{body}-{wrong}");
            let expected = Expected::of(rules::decide(
                rules::Form { rut: &invalid.rut, paid: false, payment_reference: None },
                Conflicts::default(),
            ));
            assert_eq!(expected.status, "rejected", "a wrong check digit is what this case tests");
            lane.forms.push((invalid, expected));
        }
    }
}

/// Encodes every form first, then hands them to the producer in order: one
/// partition keeps the order records were handed over in.
async fn submit_in_order(settings: &Settings, codec: &EventCodec, lanes: &[(i32, Vec<RegistrationSubmitted>)]) {
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let mut encoded = Vec::new();
    for (partition, forms) in lanes {
        for form in forms {
            let key = RegistrationKey { registration_id: form.registration_id };
            let (key, value) = codec.encode(&topics::REGISTRATIONS, &key, form).await.expect("encodes");
            encoded.push((*partition, key, value));
        }
    }
    let deliveries: Vec<_> = encoded
        .iter()
        .map(|(partition, key, value)| {
            let record = FutureRecord::to(topics::REGISTRATIONS.name()).partition(*partition).key(key).payload(value);
            producer.send_result(record).map_err(|(error, _)| error).expect("queued")
        })
        .collect();
    for delivery in futures::future::join_all(deliveries).await {
        delivery.expect("delivered").map_err(|(error, _)| error).expect("acknowledged");
    }
}

/// How many of `ids` are decided, and how many of those are published.
async fn progress(pool: &db::PgPool, ids: &[Uuid]) -> (i64, i64) {
    let mut conn = pool.get().await.expect("connection");
    let rows: Vec<(String, Option<DateTime<Utc>>)> = registrations::table
        .filter(registrations::registration_id.eq_any(ids))
        .filter(registrations::status.ne("received"))
        .select((registrations::status, registrations::published_at))
        .load(&mut conn)
        .await
        .expect("progress query");
    (rows.len() as i64, rows.iter().filter(|(_, published)| published.is_some()).count() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_forms_with_duplicates_are_decided_in_batches_as_the_rules_say() {
    // Arrange: the forms and what each must become.
    let settings = support::settings();
    let codec = EventCodec::new(&settings.registry.url);
    let pool = db::pool(&settings.database).expect("pool");
    let mut identities = fresh_identities(&pool, STANDARD_PARTITIONS.len() * CASES_PER_PARTITION * 3).await.into_iter();
    let mut expected: HashMap<Uuid, Expected> = HashMap::new();
    let mut lanes = Vec::new();
    for partition in STANDARD_PARTITIONS {
        let mut lane = Lane::default();
        for case in 0..CASES_PER_PARTITION {
            add_case(&mut lane, case, &mut identities);
        }
        let mut forms: Vec<_> = lane.forms.into_iter().chain(lane.later).collect();
        // Submission order is the order the partition carries them in.
        let start = Utc::now() - chrono::Duration::seconds(60);
        for (offset, (form, _)) in forms.iter_mut().enumerate() {
            form.submitted_at = start + chrono::Duration::milliseconds(offset as i64);
        }
        expected.extend(forms.iter().map(|(form, expected)| (form.registration_id, expected.clone())));
        lanes.push((partition, forms.into_iter().map(|(form, _)| form).collect::<Vec<_>>()));
    }
    let ids: Vec<Uuid> = expected.keys().copied().collect();
    let total = ids.len() as i64;
    assert!(total >= 2_000, "at least 2,000 forms ({total})");
    submit_in_order(&settings, &codec, &lanes).await;

    // Act: the service decides the backlog; the clock starts at its first
    // decision, so start-up and the group join are not counted.
    let service = support::start(&settings);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first_seen: Option<(Instant, i64)> = None;
    let mut all_decided: Option<Instant> = None;
    let mut published = 0;
    while Instant::now() < deadline {
        let (decided, done) = progress(&pool, &ids).await;
        if decided > 0 && first_seen.is_none() {
            first_seen = Some((Instant::now(), decided));
        }
        if decided == total && all_decided.is_none() {
            all_decided = Some(Instant::now());
        }
        published = done;
        if done == total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (started, decided_at_start) = first_seen.expect("the service decides forms");
    let finished = all_decided.expect("every form decided within two minutes");
    let seconds = finished.duration_since(started).as_secs_f64().max(0.001);
    println!(
        "{total} forms decided; {} of them in {seconds:.2} s after the first decision: {:.0} forms/s (debug build)",
        total - decided_at_start,
        (total - decided_at_start) as f64 / seconds
    );

    // Assert: each form as expected, every decision published, one member
    // with a cart per approval, no sealed key left behind.
    let mut conn = pool.get().await.expect("connection");
    let rows: Vec<(Uuid, String, Option<String>)> = registrations::table
        .filter(registrations::registration_id.eq_any(&ids))
        .select((registrations::registration_id, registrations::status, registrations::reason))
        .load(&mut conn)
        .await
        .expect("decisions");
    let mut wanted: BTreeMap<Expected, usize> = BTreeMap::new();
    let mut got: BTreeMap<Expected, usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (id, status, reason) in rows {
        let want = &expected[&id];
        *wanted.entry(want.clone()).or_default() += 1;
        let actual = Expected {
            status: match status.as_str() {
                "approved" => "approved",
                "rejected" => "rejected",
                "manual_review" => "manual_review",
                _ => "received",
            },
            reason,
        };
        if &actual != want {
            wrong.push((id, want.clone(), actual.clone()));
        }
        *got.entry(actual).or_default() += 1;
    }
    for (outcome, count) in &got {
        println!("{count:>5}  {} {}", outcome.status, outcome.reason.as_deref().unwrap_or(""));
    }
    assert_eq!(wanted.values().sum::<usize>() as i64, total, "every form was recorded");
    assert_eq!(got, wanted, "counts by outcome and cause");
    assert!(
        wrong.is_empty(),
        "{} forms decided otherwise than expected, e.g. {:?}",
        wrong.len(),
        wrong.as_slice().first()
    );
    assert_eq!(published, total, "every decision published");
    let approved: Vec<Uuid> =
        expected.iter().filter(|(_, want)| want.status == "approved").map(|(id, _)| *id).collect();
    let member_rows: Vec<(Uuid, Option<Vec<u8>>)> = members::table
        .filter(members::registration_id.eq_any(&approved))
        .select((members::member_id, members::pending_credentials))
        .load(&mut conn)
        .await
        .expect("members");
    assert_eq!(member_rows.len(), approved.len(), "one member per approved form");
    assert!(member_rows.iter().all(|(_, sealed)| sealed.is_none()), "sealed keys forgotten once published");
    let member_ids: Vec<Uuid> = member_rows.iter().map(|(id, _)| *id).collect();
    let cart_count: i64 =
        carts::table.filter(carts::vendor_id.eq_any(&member_ids)).count().get_result(&mut conn).await.expect("carts");
    assert_eq!(cart_count, approved.len() as i64, "one cart per member");

    service.stop().await;
}
