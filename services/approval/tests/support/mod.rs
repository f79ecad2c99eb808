//! Helpers for the approval tests: settings for the running stack, valid and
//! unique forms, the service in-process and its decisions read back, on
//! top of `mamochi_testkit`.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::Settings;
use mamochi_events::codec::EventCodec;
use mamochi_events::publish::publish;
use mamochi_events::topics;
use mamochi_events::{RegistrationKey, RegistrationSubmitted};
use mamochi_testkit::service::InProcess;
use mamochi_testkit::{self as kit};
use rdkafka::message::OwnedMessage;
use uuid::Uuid;

/// Settings with consumer groups of this test's own, starting at the current
/// end of the topics: earlier tests' records are not this test's business.
/// (The topics exist: `stack up` creates the whole catalog.)
pub fn settings() -> Settings {
    let mut settings = kit::settings::isolated(&[
        (mamochi_approval::FORMS_GROUP, topics::REGISTRATIONS.name()),
        (mamochi_approval::REVIEWS_GROUP, topics::REGISTRATION_REVIEWS.name()),
    ]);
    settings.approval.ops_listen = "127.0.0.1:0".into();
    settings
}

/// A RUT with a correct check digit, different on every call in this process
/// and (through the random base) between runs.
pub fn unique_rut() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 10_000_000 + (Uuid::new_v4().as_u128() % 80_000_000) as u32;
    let body = base.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % 90_000_000 + 10_000_000;
    mamochi_rules::rut::for_number(body)
}

/// A valid form with unique RUT, email, phone and plate.
pub fn form(paid: bool) -> RegistrationSubmitted {
    let id = Uuid::new_v4();
    let tag = id.simple().to_string();
    // The low 64 bits of a random id: enough to keep test forms apart.
    let seed = id.as_u64_pair().1;
    let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now");
    RegistrationSubmitted {
        registration_id: id,
        submitted_at: now,
        full_name: "Rosa Pérez Soto".into(),
        rut: unique_rut(),
        email: format!("rosa.{}@example.cl", &tag[..12]),
        phone: mamochi_rules::phone::mobile(seed),
        comuna: "Ñuñoa".into(),
        // 10 million plates, so test forms rarely share a cart.
        cart_plate: mamochi_rules::plate::current(seed),
        paid,
        payment_reference: paid.then(|| "TX-0001".to_string()),
        tracking_token_sha256: "ab".repeat(32),
    }
}

/// Writes a form where the gateway would: paid ones on the paid partition.
pub async fn submit(producer: &rdkafka::producer::FutureProducer, codec: &EventCodec, form: &RegistrationSubmitted) {
    let partition =
        if form.paid { topics::PAID_REGISTRATION_PARTITION } else { 1 + (form.registration_id.as_u128() % 3) as i32 };
    publish(
        producer,
        codec,
        &topics::REGISTRATIONS,
        &RegistrationKey { registration_id: form.registration_id },
        form,
        Some(partition),
    )
    .await
    .expect("form acknowledged");
}

/// Starts the approval service in-process; stop it with `stop()`.
pub fn start(settings: &Settings) -> InProcess {
    let settings = settings.clone();
    InProcess::spawn(|token| async move { mamochi_approval::run(&settings, token).await })
}

/// Polls the form's status until it is not 'received' (or the timeout).
pub async fn wait_for_status(settings: &Settings, id: Uuid, timeout: Duration) -> Option<String> {
    use mamochi_common::schema::registrations;
    let pool = kit::settings::pool(settings);
    kit::wait::poll_for(timeout, Duration::from_millis(10), || async {
        let mut conn = pool.get().await.expect("connection");
        let status: Option<String> = registrations::table
            .find(id)
            .select(registrations::status)
            .first(&mut conn)
            .await
            .optional()
            .expect("query");
        status.filter(|status| status != "received")
    })
    .await
}

/// Records of `topic` (from the start) that `filter` accepts, up to
/// `expected` of them or 30 s.
pub async fn records(
    settings: &Settings,
    topic: &str,
    expected: usize,
    filter: impl Fn(&OwnedMessage) -> bool,
) -> Vec<OwnedMessage> {
    kit::records::read_records(settings, topic, expected, Duration::from_secs(30), filter).await
}
