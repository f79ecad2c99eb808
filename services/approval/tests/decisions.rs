//! The approval service on the real stack: a clean form becomes a member with
//! a cart and a hashed API key whose only clear-text copy travels sealed in
//! the credentials email request; a duplicate RUT is rejected with an email
//! giving the reason; a form sent to manual review is approved by staff.

mod support;

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::schema::{carts, members, registrations};
use mamochi_common::seal::Sealer;
use mamochi_common::{db, kafka};
use mamochi_events::codec::EventCodec;
use mamochi_events::publish::publish;
use mamochi_events::topics;
use mamochi_events::*;
use mamochi_rules::digest::sha256_hex;
use rdkafka::Message;
use secrecy::ExposeSecret;
use uuid::Uuid;

async fn email_request(settings: &mamochi_common::Settings, codec: &EventCodec, to: &str) -> EmailRequested {
    let records = support::records(settings, topics::EMAIL_REQUESTS.name(), 1, |message| {
        message.payload().is_some_and(|payload| payload.windows(to.len()).any(|window| window == to.as_bytes()))
    })
    .await;
    assert_eq!(records.len(), 1, "one email request to {to}");
    codec.decode(records[0].payload()).await.expect("decodes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_are_approved_rejected_or_reviewed_with_the_right_effects() {
    // Arrange
    let settings = support::settings();
    let codec = EventCodec::new(&settings.registry.url);
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let service = support::start(&settings);
    let pool = db::pool(&settings.database).expect("pool");
    let sealer = Sealer::from_hex(&settings.secrets.email_seal_key).expect("sealer");

    // Act 1: a clean, paid form.
    let clean = support::form(true);
    support::submit(&producer, &codec, &clean).await;
    let status = support::wait_for_status(&settings, clean.registration_id, Duration::from_secs(30)).await;

    // Assert 1: approved; member, cart, hashed key; sealed key in the email request only.
    assert_eq!(status.as_deref(), Some("approved"));
    let mut conn = pool.get().await.expect("connection");
    let (member_id, key_hash, pending): (Uuid, String, Option<Vec<u8>>) = members::table
        .filter(members::registration_id.eq(clean.registration_id))
        .select((members::member_id, members::api_key_sha256, members::pending_credentials))
        .first(&mut conn)
        .await
        .expect("member created");
    let stock: i32 = carts::table.find(member_id).select(carts::stock).first(&mut conn).await.expect("cart created");
    assert_eq!(stock, settings.distributor.initial_stock);
    let request = email_request(&settings, &codec, &clean.email).await;
    assert_eq!(request.category, "credentials");
    assert!(request.body_text.contains("Authorization: Bearer {secret}"));
    assert!(!request.body_text.contains("mamochi_"), "no clear key in the Kafka record");
    let key = sealer.open(request.sealed_secret.as_deref().expect("sealed key")).expect("opens");
    assert!(key.expose_secret().starts_with("mamochi_"));
    assert_eq!(sha256_hex(key.expose_secret()), key_hash, "the emailed key is the member's key");
    let published_pending = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut pending = pending;
        while pending.is_some() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            pending = members::table
                .find(member_id)
                .select(members::pending_credentials)
                .first(&mut conn)
                .await
                .expect("query");
        }
        pending
    };
    assert!(published_pending.is_none(), "the sealed key is forgotten once its email is requested");

    // Act 2: another form with the same RUT.
    let mut duplicate = support::form(false);
    duplicate.rut = clean.rut.clone();
    support::submit(&producer, &codec, &duplicate).await;
    let status = support::wait_for_status(&settings, duplicate.registration_id, Duration::from_secs(30)).await;

    // Assert 2: rejected, and the applicant is told why.
    assert_eq!(status.as_deref(), Some("rejected"));
    let rejection = email_request(&settings, &codec, &duplicate.email).await;
    assert_eq!(rejection.category, "rejection");
    assert!(rejection.body_text.contains("RUT"), "{}", rejection.body_text);

    // Act 3: a form whose cart plate belongs to a member goes to manual
    // review; staff approve it through a review event.
    let mut same_cart = support::form(false);
    same_cart.cart_plate = clean.cart_plate.clone();
    support::submit(&producer, &codec, &same_cart).await;
    let status = support::wait_for_status(&settings, same_cart.registration_id, Duration::from_secs(30)).await;
    assert_eq!(status.as_deref(), Some("manual_review"));
    let review = RegistrationReviewed {
        review_id: Uuid::new_v4(),
        registration_id: same_cart.registration_id,
        decision: ReviewDecision::Approve,
        reason: None,
        reviewer: "staff:test".into(),
        reviewed_at: Utc::now(),
    };
    publish(
        &producer,
        &codec,
        &topics::REGISTRATION_REVIEWS,
        &RegistrationKey { registration_id: same_cart.registration_id },
        &review,
        None,
    )
    .await
    .expect("review acknowledged");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut decided_by = None;
    while tokio::time::Instant::now() < deadline {
        let row: (String, Option<String>) = registrations::table
            .find(same_cart.registration_id)
            .select((registrations::status, registrations::decided_by))
            .first(&mut conn)
            .await
            .expect("query");
        if row.0 == "approved" {
            decided_by = row.1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Assert 3: approved by staff, credentials requested.
    assert_eq!(decided_by.as_deref(), Some("staff:test"));
    assert_eq!(email_request(&settings, &codec, &same_cart.email).await.category, "credentials");

    service.stop().await;
}
