//! The write path's promises under pressure: a revoked key stops working
//! within the key cache's bound, a retry after a lost claim is the same
//! sale, and overload is refused at once with 503 and `Retry-After`.

use std::time::{Duration, Instant};

use mamochi_events::topics;
use serde_json::json;

use crate::helpers::{settings, spawn_app, spawn_app_with, Answer, Tail};
use crate::sales::sales_until_markers;

#[tokio::test]
async fn a_revoked_key_stops_working_within_the_key_cache_bound() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;
    let bound = Duration::from_millis(app.settings.gateway.key_cache_ttl_ms);
    assert_eq!(app.get("/v1/me", Some(&vendor.api_key)).await.status, 200, "the key works and is now cached");

    // Act: revoke the key where approval keeps it (the stored digest changes).
    app.sql(&format!(
        "UPDATE members SET api_key_sha256 = 'revoked-{}' WHERE member_id = '{}'",
        vendor.member_id, vendor.member_id
    ))
    .await;
    let revoked_at = Instant::now();
    let deadline = revoked_at + bound + Duration::from_secs(5);
    let refused_after = loop {
        let answer = app.get("/v1/me", Some(&vendor.api_key)).await;
        if answer.status == 401 {
            break revoked_at.elapsed();
        }
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert!(Instant::now() < deadline, "the revoked key still works after {:?}", revoked_at.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Assert
    assert!(refused_after <= bound + Duration::from_millis(250), "refused after {refused_after:?}, bound {bound:?}");
    let sale = app
        .client
        .post(app.url("/v1/sales"))
        .bearer_auth(&vendor.api_key)
        .json(&json!({"quantity": 1, "unit_price_clp": 1000, "payment_method": "cash"}))
        .send()
        .await
        .expect("request");
    assert_eq!(sale.status().as_u16(), 401, "a sale with the revoked key is refused too");
}

#[tokio::test]
async fn a_retry_after_a_lost_claim_is_the_same_sale() {
    // Arrange: a keyed sale is recorded, then its claim disappears, as after
    // a produce whose acknowledgement was lost (the claim is released).
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;
    let tail = Tail::start(&app.settings, &topics::SALES).await;
    let body = json!({"quantity": 1, "unit_price_clp": 1500, "payment_method": "cash"});
    let key = format!("ambiguous-{}", vendor.member_id);
    let first = Answer::from(
        app.client
            .post(app.url("/v1/sales"))
            .bearer_auth(&vendor.api_key)
            .header("Idempotency-Key", &key)
            .json(&body)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    app.sql(&format!("DELETE FROM sale_requests WHERE vendor_id = '{}'", vendor.member_id)).await;

    // Act
    let retry = Answer::from(
        app.client
            .post(app.url("/v1/sales"))
            .bearer_auth(&vendor.api_key)
            .header("Idempotency-Key", &key)
            .json(&body)
            .send()
            .await
            .expect("request"),
    )
    .await;

    // Assert: the retry produced again, with the first attempt's sale id,
    // which accounting and the distributor apply once.
    assert_eq!(retry.status, 201, "{:?}", retry.body);
    assert_eq!(retry.body["sale_id"], first.body["sale_id"]);
    let ids: Vec<String> =
        sales_until_markers(&app, &tail, &vendor).await.iter().map(|sale| sale.sale_id.to_string()).collect();
    assert_eq!(ids.len(), 2, "both attempts reached the topic: {ids:?}");
    assert!(ids.iter().all(|id| Some(id.as_str()) == first.body["sale_id"].as_str()), "{ids:?}");
}

#[tokio::test]
async fn over_capacity_the_gateway_answers_503_with_retry_after_at_once() {
    // Arrange: room for one write request at a time.
    let mut settings = settings();
    settings.gateway.max_in_flight = 1;
    let app = spawn_app_with(settings).await;
    let vendor = app.create_vendor(1_000).await;
    let tail = Tail::start(&app.settings, &topics::SALES).await;
    let body = json!({"quantity": 1, "unit_price_clp": 1000, "payment_method": "cash"});

    // Act: forty sales at once.
    let requests = (0..40).map(|_| {
        let request = app.client.post(app.url("/v1/sales")).bearer_auth(&vendor.api_key).json(&body);
        async move {
            let sent = Instant::now();
            let answer = Answer::from(request.send().await.expect("request")).await;
            (answer, sent.elapsed())
        }
    });
    let answers = futures::future::join_all(requests).await;

    // Assert
    let created = answers.iter().filter(|(answer, _)| answer.status == 201).count();
    let refused: Vec<_> = answers.iter().filter(|(answer, _)| answer.status == 503).collect();
    let slowest = refused.iter().map(|(_, took)| *took).max().unwrap_or_default();
    eprintln!(
        "{created} of {} sales admitted, {} refused with 503, slowest refusal {slowest:?}",
        answers.len(),
        refused.len()
    );
    assert_eq!(created + refused.len(), answers.len(), "only 201 or 503: {answers:?}");
    assert!(created >= 1, "the admitted requests are served");
    assert!(!refused.is_empty(), "one slot cannot take forty requests at once");
    for (answer, took) in &refused {
        assert_eq!(answer.error(), (503, "overloaded", None));
        assert_eq!(answer.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
        assert!(*took < Duration::from_secs(2), "a refusal is immediate, took {took:?}");
    }
    let recorded = sales_until_markers(&app, &tail, &vendor).await.len();
    assert_eq!(recorded, created, "exactly the admitted sales were recorded");
}
