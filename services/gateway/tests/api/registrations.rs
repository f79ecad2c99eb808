//! Submitting forms: the paid lane, the standard partitions, the status page
//! guarded by the tracking token.

use std::time::Duration;

use mamochi_events::{topics, RegistrationKey, RegistrationSubmitted};
use serde_json::json;
use uuid::Uuid;

use mamochi_rules::digest::sha256_hex;

use crate::helpers::{form, spawn_app, Tail};

#[tokio::test]
async fn a_paid_form_lands_on_the_paid_partition_normalised_with_only_the_token_hash() {
    // Arrange
    let app = spawn_app().await;
    let tail = Tail::start(&app.settings, &topics::REGISTRATIONS).await;
    let mut body = form(true);
    body["rut"] = json!("12.345.678-5");

    // Act
    let answer = app.post("/v1/registrations", &body, None).await;

    // Assert
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "received");
    let id: Uuid = answer.body["registration_id"].as_str().and_then(|s| s.parse().ok()).expect("registration_id");
    let token = answer.body["tracking_token"].as_str().expect("tracking_token").to_string();
    assert!(token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()), "128+ bits of hex: {token}");
    assert_eq!(answer.body["status_url"], format!("http://gateway.test/v1/registrations/{id}"));

    let records = tail
        .collect::<RegistrationKey, RegistrationSubmitted>(&app.codec, Duration::from_secs(10), |r| {
            r.iter().any(|(_, _, v)| v.registration_id == id)
        })
        .await;
    let (partition, key, event) =
        records.into_iter().find(|(_, _, v)| v.registration_id == id).expect("form on the topic");
    assert_eq!(partition, topics::PAID_REGISTRATION_PARTITION);
    assert_eq!(key.registration_id, id);
    assert_eq!(event.rut, "12345678-5");
    assert_eq!(event.phone, "+56987654321");
    assert_eq!(event.cart_plate, "BCDF12");
    assert!(event.email.starts_with("rosa.") && event.email.ends_with("@example.cl"));
    assert!(event.paid && event.payment_reference.is_some());
    assert_eq!(event.tracking_token_sha256, sha256_hex(&token), "the event carries the token's hash, not the token");

    let stored = status_by_header(&app, &id.to_string(), &token).await;
    assert_eq!(stored.status, 200);
    assert_eq!(stored.body["status"], "received");
}

#[tokio::test]
async fn standard_forms_spread_over_partitions_one_to_three() {
    // Arrange
    let app = spawn_app().await;
    let tail = Tail::start(&app.settings, &topics::REGISTRATIONS).await;

    // Act
    let mut ids = Vec::new();
    for _ in 0..8 {
        let answer = app.post("/v1/registrations", &form(false), None).await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        ids.push(answer.body["registration_id"].as_str().and_then(|s| s.parse::<Uuid>().ok()).expect("id"));
    }

    // Assert
    let records = tail
        .collect::<RegistrationKey, RegistrationSubmitted>(&app.codec, Duration::from_secs(10), |r| {
            ids.iter().all(|id| r.iter().any(|(_, _, v)| v.registration_id == *id))
        })
        .await;
    for id in &ids {
        let (partition, _, event) =
            records.iter().find(|(_, _, v)| v.registration_id == *id).expect("every form on the topic");
        assert!((1..=3).contains(partition), "standard form on partition {partition}");
        assert!(!event.paid && event.payment_reference.is_none());
    }
}

#[tokio::test]
async fn the_status_is_readable_only_with_the_right_token() {
    // Arrange
    let app = spawn_app().await;
    let answer = app.post("/v1/registrations", &form(false), None).await;
    assert_eq!(answer.status, 202);
    let id = answer.body["registration_id"].as_str().expect("id").to_string();
    let token = answer.body["tracking_token"].as_str().expect("token").to_string();

    // Act
    let by_header = status_by_header(&app, &id, &token).await;
    let without = app.get(&format!("/v1/registrations/{id}"), None).await;
    let wrong = status_by_header(&app, &id, &"0".repeat(64)).await;
    let unknown = status_by_header(&app, &Uuid::new_v4().to_string(), &token).await;
    let malformed = status_by_header(&app, "not-a-uuid", &token).await;

    // Assert
    assert_eq!(by_header.status, 200);
    assert_eq!(by_header.body["registration_id"], id.as_str());
    assert_eq!(by_header.body["status"], "received");
    assert_eq!(by_header.body["paid"], false);
    assert!(by_header.body["submitted_at"].is_string());
    assert!(by_header.body["decided_at"].is_null() && by_header.body["reason"].is_null());
    assert_eq!(without.error(), (401, "missing_token", None));
    assert_eq!(wrong.error(), (404, "not_found", None), "a wrong token looks like an unknown id");
    assert_eq!(unknown.error(), (404, "not_found", None));
    assert_eq!(malformed.error(), (404, "not_found", None));

    let mut conn = app.pool.get().await.expect("connection");
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use mamochi_common::schema::registrations;
    let stored: String = registrations::table
        .find(id.parse::<Uuid>().expect("uuid"))
        .select(registrations::tracking_token_sha256)
        .first(&mut conn)
        .await
        .expect("row inserted as received");
    assert_eq!(stored, sha256_hex(&token), "only the hash is stored");
}

pub async fn status_by_header(app: &crate::helpers::TestApp, id: &str, token: &str) -> crate::helpers::Answer {
    let response = app
        .client
        .get(app.url(&format!("/v1/registrations/{id}")))
        .header("X-Tracking-Token", token)
        .send()
        .await
        .expect("request");
    crate::helpers::Answer::from(response).await
}
