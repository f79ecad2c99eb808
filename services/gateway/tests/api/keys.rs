//! The vendor key lifecycle: a vendor rotates their key (the old one is
//! refused within the key cache's time-to-live, and stays refused), staff
//! revoke a key, and staff re-issue a lost key with a credentials email whose
//! sealed key works.

use std::time::Duration;

use mamochi_common::seal::Sealer;
use mamochi_events::{topics, EmailRequested, MessageKey};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, Answer, Tail, TestApp};

/// Slack over the documented bound for the refusal to be observed.
const SLACK: Duration = Duration::from_millis(1_500);

fn bound(app: &TestApp) -> Duration {
    Duration::from_millis(app.settings.gateway.key_cache_ttl_ms)
}

async fn rotate(app: &TestApp, key: &str, idempotency_key: Option<&str>) -> Answer {
    let mut request = app.client.post(app.url("/v1/me/keys")).bearer_auth(key);
    if let Some(idempotency_key) = idempotency_key {
        request = request.header("Idempotency-Key", idempotency_key);
    }
    Answer::from(request.send().await.expect("request")).await
}

async fn delete(app: &TestApp, path: &str, bearer: Option<&str>) -> Answer {
    let mut request = app.client.delete(app.url(path));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    Answer::from(request.send().await.expect("request")).await
}

/// Waits until `key` is refused on `GET /v1/me`, failing after `deadline`;
/// then checks for another full bound that it stays refused.
async fn refused_within(app: &TestApp, key: &str, deadline: tokio::time::Instant) {
    loop {
        let me = app.get("/v1/me", Some(key)).await;
        if me.status == 401 {
            break;
        }
        assert_eq!(me.status, 200, "{:?}", me.body);
        assert!(tokio::time::Instant::now() < deadline, "the old key was still accepted after the bound");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let until = tokio::time::Instant::now() + bound(app);
    while tokio::time::Instant::now() < until {
        assert_eq!(app.get("/v1/me", Some(key)).await.error(), (401, "unauthorized", None), "refused for good");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_rotated_key_works_a_retry_gets_it_again_and_the_old_one_is_refused_within_the_bound() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;
    let idempotency_key = format!("rotate-{}", Uuid::new_v4());

    // Act
    let rotated = rotate(&app, &vendor.api_key, Some(&idempotency_key)).await;
    let answered_at = tokio::time::Instant::now();
    let retried = rotate(&app, &vendor.api_key, Some(&idempotency_key)).await;
    let another = rotate(&app, &vendor.api_key, Some("another-rotation")).await;

    // Assert
    assert_eq!(rotated.status, 201, "{:?}", rotated.body);
    let new_key = rotated.body["api_key"].as_str().expect("the new key").to_string();
    assert_ne!(new_key, vendor.api_key);
    assert!(new_key.starts_with("mamochi_") && new_key.len() == "mamochi_".len() + 64, "{new_key}");
    assert!(new_key.starts_with(rotated.body["key_id"].as_str().expect("key id")));
    assert_eq!(rotated.body["vendor_id"], json!(vendor.member_id));
    assert_eq!(rotated.body["previous_key_refused_within_ms"], json!(bound(&app).as_millis()));
    assert_eq!((retried.status, &retried.body["api_key"]), (201, &Value::from(new_key.clone())), "same key on retry");
    assert_eq!(another.error(), (409, "key_already_rotated", None), "a key is rotated once");
    let me = app.get("/v1/me", Some(&new_key)).await;
    assert_eq!((me.status, &me.body["member_id"]), (200, &json!(vendor.member_id)), "{:?}", me.body);
    refused_within(&app, &vendor.api_key, answered_at + bound(&app) + SLACK).await;
    assert_eq!(rotate(&app, &vendor.api_key, Some(&idempotency_key)).await.error(), (401, "unauthorized", None));
    assert_eq!(app.get("/v1/me", Some(&new_key)).await.status, 200, "the new key still works");
}

#[tokio::test]
async fn a_rotation_without_an_idempotency_key_is_random_and_bad_requests_are_refused() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;

    // Act
    let anonymous = rotate(&app, "mamochi_not-a-key", None).await;
    let bad_header = rotate(&app, &vendor.api_key, Some("two words")).await;
    let rotated = rotate(&app, &vendor.api_key, None).await;
    let again = rotate(&app, &vendor.api_key, None).await;

    // Assert
    assert_eq!(anonymous.error(), (401, "unauthorized", None));
    assert_eq!(bad_header.error(), (422, "invalid_value", Some("Idempotency-Key")));
    assert_eq!(rotated.status, 201, "{:?}", rotated.body);
    let new_key = rotated.body["api_key"].as_str().expect("the new key");
    assert_eq!(again.error(), (409, "key_already_rotated", None), "without the header a retry cannot be recognised");
    assert_eq!(app.get("/v1/me", Some(new_key)).await.status, 200);
}

#[tokio::test]
async fn staff_revoke_a_key_and_it_stays_refused() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;
    let bystander = app.create_vendor(10).await;
    let path = format!("/v1/admin/vendors/{}/key", vendor.member_id);
    let staff = Some(app.staff.token.as_str());

    // Act
    let no_token = delete(&app, &path, None).await;
    let vendor_as_staff = delete(&app, &path, Some(&bystander.api_key)).await;
    let revoked = delete(&app, &path, staff).await;
    let revoked_at = tokio::time::Instant::now();
    let again = delete(&app, &path, staff).await;
    let unknown = delete(&app, &format!("/v1/admin/vendors/{}/key", Uuid::new_v4()), staff).await;
    let malformed = delete(&app, "/v1/admin/vendors/xyz/key", staff).await;

    // Assert
    assert_eq!(no_token.error(), (401, "unauthorized", None));
    assert_eq!(vendor_as_staff.error(), (401, "unauthorized", None), "a vendor key is no staff token");
    assert_eq!(revoked.status, 204, "{:?}", revoked.body);
    assert_eq!(again.status, 204, "revoking is idempotent");
    assert_eq!(unknown.error(), (404, "not_found", None));
    assert_eq!(malformed.error(), (404, "not_found", None));
    refused_within(&app, &vendor.api_key, revoked_at + bound(&app) + SLACK).await;
    assert_eq!(rotate(&app, &vendor.api_key, None).await.error(), (401, "unauthorized", None), "no rotation either");
    assert_eq!(app.get("/v1/me", Some(&bystander.api_key)).await.status, 200, "other vendors keep their keys");
}

#[tokio::test]
async fn staff_reissue_a_lost_key_with_a_credentials_email_whose_key_works() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;
    let tail = Tail::start(&app.settings, &topics::EMAIL_REQUESTS).await;
    let sealer = Sealer::from_hex(&app.settings.secrets.email_seal_key).expect("seal key");
    let path = format!("/v1/admin/vendors/{}/key", vendor.member_id);

    // Act
    let reissued = app.post(&path, &json!({}), Some(app.staff.token.as_str())).await;
    let reissued_at = tokio::time::Instant::now();
    let unknown = app
        .post(&format!("/v1/admin/vendors/{}/key", Uuid::new_v4()), &json!({}), Some(app.staff.token.as_str()))
        .await;

    // Assert
    assert_eq!(reissued.status, 202, "{:?}", reissued.body);
    assert_eq!(reissued.body["issued_by"], json!(app.staff.name), "the answer names who re-issued it");
    assert_eq!(unknown.error(), (404, "not_found", None));
    let message_id: Uuid = reissued.body["email_message_id"].as_str().expect("message id").parse().expect("uuid");
    let records = tail
        .collect::<MessageKey, EmailRequested>(&app.codec, Duration::from_secs(10), |records| {
            records.iter().any(|(_, _, email)| email.message_id == message_id)
        })
        .await;
    let (_, key, email) = records.iter().find(|(_, _, email)| email.message_id == message_id).expect("the email");
    assert_eq!(key.message_id, message_id);
    assert_eq!((email.to.as_str(), email.category.as_str()), (vendor.email.as_str(), "credentials"));
    assert!(email.body_text.contains("{secret}"), "the key is filled in by the notifier");
    let sealed = email.sealed_secret.as_deref().expect("the key travels sealed");
    let new_key = sealer.open(sealed).expect("opens with the platform's seal key").expose_secret().to_string();
    assert!(!email.body_text.contains(&new_key), "never in clear text in Kafka");
    assert!(new_key.starts_with(reissued.body["key_id"].as_str().expect("key id")));
    let me = app.get("/v1/me", Some(&new_key)).await;
    assert_eq!((me.status, &me.body["member_id"]), (200, &json!(vendor.member_id)), "{:?}", me.body);
    refused_within(&app, &vendor.api_key, reissued_at + bound(&app) + SLACK).await;
}
