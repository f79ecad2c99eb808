//! Staff endpoints: listing, approving and rejecting forms (each review
//! records the staff token's name); bad tokens refused. A test that asserts
//! a review was *not* published reads the topic up to markers of its own
//! written after the requests ([`reviews_until_markers`]).

use std::time::Duration;

use mamochi_events::{topics, RegistrationKey, RegistrationReviewed, ReviewDecision};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{form, spawn_app, Tail, TestApp};

async fn submitted(app: &crate::helpers::TestApp, paid: bool) -> String {
    let answer = app.post("/v1/registrations", &form(paid), None).await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    answer.body["registration_id"].as_str().expect("id").to_string()
}

/// Every review on the topic since `tail` started, up to markers.
///
/// The gateway answers a review only after Kafka acknowledged it, so a
/// review produced for a request already answered lies before any review
/// produced now, in its partition. Markers are real reviews (rejections of
/// new forms of this test, through the API, so nothing on the topic is
/// fake for the approval service): forms are rejected until a marker has
/// arrived in every partition. Marker reviews are left out of the answer.
/// Panics if that does not happen.
async fn reviews_until_markers(app: &TestApp, tail: &Tail) -> Vec<(i32, RegistrationKey, RegistrationReviewed)> {
    let partitions = topics::REGISTRATION_REVIEWS.info.partitions;
    let mut reviews = Vec::new();
    let mut markers = Vec::new();
    let mut marked = std::collections::BTreeSet::new();
    // Keys spread over 3 partitions: 60 forms miss one with odds ~(2/3)^60.
    for _ in 0..60 {
        let marker = submitted(app, false).await.parse::<Uuid>().expect("uuid");
        let answer = app
            .post(
                &format!("/v1/admin/registrations/{marker}/reject"),
                &json!({"reason": "test marker"}),
                Some(app.staff.token.as_str()),
            )
            .await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        markers.push(marker);
        let seen =
            |r: &[(i32, RegistrationKey, RegistrationReviewed)]| r.iter().any(|(_, _, v)| v.registration_id == marker);
        let records =
            tail.collect::<RegistrationKey, RegistrationReviewed>(&app.codec, Duration::from_secs(30), seen).await;
        assert!(seen(&records), "the tail never reached marker {marker}");
        marked
            .extend(records.iter().filter(|(_, _, v)| v.registration_id == marker).map(|(partition, _, _)| *partition));
        reviews.extend(records);
        if marked.len() == usize::try_from(partitions).expect("partitions") {
            return reviews.into_iter().filter(|(_, _, v)| !markers.contains(&v.registration_id)).collect();
        }
    }
    panic!("no marker reached partitions other than {marked:?}");
}

#[tokio::test]
async fn staff_list_pending_forms_and_bad_tokens_are_refused() {
    // Arrange
    let app = spawn_app().await;
    let id = submitted(&app, true).await;

    // Act
    let pending = app.get("/v1/admin/registrations?status=pending", Some(app.staff.token.as_str())).await;
    let default = app.get("/v1/admin/registrations", Some(app.staff.token.as_str())).await;
    let approved = app.get("/v1/admin/registrations?status=approved", Some(app.staff.token.as_str())).await;
    let bogus = app.get("/v1/admin/registrations?status=everything", Some(app.staff.token.as_str())).await;
    let no_token = app.get("/v1/admin/registrations?status=pending", None).await;
    let wrong_token = app.get("/v1/admin/registrations?status=pending", Some("not-the-token")).await;

    // Assert
    assert_eq!(pending.status, 200);
    let listed = pending.body["registrations"].as_array().expect("list");
    let mine = listed.iter().find(|r| r["registration_id"] == id.as_str()).expect("the new form is pending");
    assert_eq!(mine["status"], "received");
    assert_eq!(mine["paid"], true);
    assert!(default.body["registrations"]
        .as_array()
        .expect("list")
        .iter()
        .any(|r| r["registration_id"] == id.as_str()));
    assert!(!approved.body["registrations"]
        .as_array()
        .expect("list")
        .iter()
        .any(|r| r["registration_id"] == id.as_str()));
    assert_eq!(bogus.error(), (422, "invalid_value", Some("status")));
    assert_eq!(no_token.error(), (401, "unauthorized", None));
    assert_eq!(wrong_token.error(), (401, "unauthorized", None));
    assert_eq!(wrong_token.headers.get("www-authenticate").map(|v| v.as_bytes()), Some(&b"Bearer"[..]));
}

#[tokio::test]
async fn approve_and_reject_publish_reviews() {
    // Arrange
    let app = spawn_app().await;
    let to_approve = submitted(&app, false).await;
    let to_reject = submitted(&app, false).await;
    let tail = Tail::start(&app.settings, &topics::REGISTRATION_REVIEWS).await;

    // Act
    let approved = app
        .post(&format!("/v1/admin/registrations/{to_approve}/approve"), &json!({}), Some(app.staff.token.as_str()))
        .await;
    let no_reason = app
        .post(&format!("/v1/admin/registrations/{to_reject}/reject"), &json!({}), Some(app.staff.token.as_str()))
        .await;
    let rejected = app
        .post(
            &format!("/v1/admin/registrations/{to_reject}/reject"),
            &json!({"reason": "duplicate form"}),
            Some(app.staff.token.as_str()),
        )
        .await;
    let unauthorised =
        app.post(&format!("/v1/admin/registrations/{to_approve}/approve"), &json!({}), Some("nope")).await;

    // Assert
    assert_eq!(approved.status, 202, "{:?}", approved.body);
    assert_eq!(approved.body["decision"], "approve");
    assert_eq!(no_reason.error(), (422, "missing_field", Some("reason")));
    assert_eq!(rejected.status, 202, "{:?}", rejected.body);
    assert_eq!(unauthorised.error(), (401, "unauthorized", None));
    let ids = [to_approve.parse::<Uuid>().expect("uuid"), to_reject.parse::<Uuid>().expect("uuid")];
    let records = reviews_until_markers(&app, &tail).await;
    let mine: Vec<_> = records.iter().filter(|(_, _, v)| ids.contains(&v.registration_id)).collect();
    assert_eq!(mine.len(), 2, "one review each, none for the refused requests: {mine:?}");
    let approval = mine.iter().find(|(_, _, v)| v.registration_id == ids[0]).expect("approval");
    assert_eq!(
        (approval.2.decision, approval.2.reviewer.as_str()),
        (ReviewDecision::Approve, app.staff.name.as_str()),
        "the review records the staff token's name"
    );
    assert_eq!(approval.1.registration_id, ids[0], "keyed by registration");
    let rejection = mine.iter().find(|(_, _, v)| v.registration_id == ids[1]).expect("rejection");
    assert_eq!(rejection.2.decision, ReviewDecision::Reject);
    assert_eq!(rejection.2.reviewer, app.staff.name);
    assert_eq!(rejection.2.reason.as_deref(), Some("duplicate form"));
}

#[tokio::test]
async fn reviews_of_unknown_or_decided_forms_are_refused() {
    // Arrange
    let app = spawn_app().await;
    let decided = submitted(&app, false).await;
    app.sql(&format!(
        "UPDATE registrations SET status = 'approved', decided_at = now() WHERE registration_id = '{decided}'"
    ))
    .await;

    // Act
    let unknown = app
        .post(
            &format!("/v1/admin/registrations/{}/approve", Uuid::new_v4()),
            &json!({}),
            Some(app.staff.token.as_str()),
        )
        .await;
    let malformed = app.post("/v1/admin/registrations/xyz/approve", &json!({}), Some(app.staff.token.as_str())).await;
    let again = app
        .post(&format!("/v1/admin/registrations/{decided}/approve"), &json!({}), Some(app.staff.token.as_str()))
        .await;
    let reject_again = app
        .post(
            &format!("/v1/admin/registrations/{decided}/reject"),
            &json!({"reason": "late"}),
            Some(app.staff.token.as_str()),
        )
        .await;

    // Assert
    assert_eq!(unknown.error(), (404, "not_found", None));
    assert_eq!(malformed.error(), (404, "not_found", None));
    assert_eq!(again.error(), (409, "already_decided", None));
    assert_eq!(reject_again.error(), (409, "already_decided", None));
}
