//! Abuse limits on the real stack: each limit lets its burst through, then
//! answers 429 `rate_limited` with `Retry-After` and the error envelope,
//! while another client (address, vendor) is unaffected; payment references
//! follow their format and are accepted once, across gateway instances; the
//! tracking token is read from its header only.
//!
//! Each test starts its own gateway with small limits, so counts are its own.

use std::net::IpAddr;

use futures::future::join_all;
use mamochi_common::config::{RateLimit, RateLimitSettings};
use mamochi_common::Settings;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{add_staff, form, payment_reference, settings, spawn_app, spawn_app_with, Answer, TestApp};
use crate::registrations::status_by_header;

/// `n` requests, then none for an hour: the (n+1)th is over the limit.
fn only(n: u32) -> RateLimit {
    RateLimit { requests: n, per_secs: 3_600, burst: n }
}

fn limited(edit: impl FnOnce(&mut RateLimitSettings)) -> Settings {
    let mut settings = settings();
    edit(&mut settings.gateway.rate_limits);
    settings
}

/// The answer is a 429 in the envelope, with `Retry-After` in whole seconds
/// no longer than the limit's refill time of one request.
fn assert_rate_limited(answer: &Answer, limit: RateLimit) {
    assert_eq!(answer.error(), (429, "rate_limited", None), "{:?}", answer.body);
    assert!(answer.body["error"]["message"].as_str().is_some_and(|m| m.contains("Retry-After")));
    let retry_after: u64 = answer
        .headers
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("Retry-After in whole seconds");
    let refill = u64::from(limit.per_secs) / u64::from(limit.requests);
    assert!((1..=refill).contains(&retry_after), "Retry-After {retry_after} s for a refill of {refill} s");
}

/// A client whose connections come from `address` (any 127/8 address is
/// this machine's loopback).
fn client_from(address: &str) -> reqwest::Client {
    let address: IpAddr = address.parse().expect("address");
    reqwest::Client::builder().local_address(address).build().expect("client")
}

async fn register(app: &TestApp, client: &reqwest::Client, body: &Value) -> Answer {
    Answer::from(client.post(app.url("/v1/registrations")).json(body).send().await.expect("request")).await
}

#[tokio::test]
async fn registrations_over_the_per_address_limit_are_refused_and_other_addresses_are_not() {
    // Arrange
    let limit = only(2);
    let app = spawn_app_with(limited(|limits| limits.registrations_per_ip = limit)).await;
    let first_address = client_from("127.0.0.1");

    // Act
    let mut within = Vec::new();
    for _ in 0..2 {
        within.push(register(&app, &first_address, &form(false)).await.status);
    }
    let over = register(&app, &first_address, &form(false)).await;
    // The header is not believed from a client that is not a trusted proxy.
    let spoofed = Answer::from(
        first_address
            .post(app.url("/v1/registrations"))
            .header("X-Forwarded-For", "203.0.113.77")
            .json(&form(false))
            .send()
            .await
            .expect("request"),
    )
    .await;
    let other_address = register(&app, &client_from("127.0.0.2"), &form(false)).await;

    // Assert
    assert_eq!(within, [202, 202]);
    assert_rate_limited(&over, limit);
    assert_rate_limited(&spoofed, limit);
    assert_eq!(other_address.status, 202, "{:?}", other_address.body);
}

#[tokio::test]
async fn status_reads_count_per_forwarded_client_behind_a_trusted_proxy() {
    // Arrange: the test client is the proxy (127.0.0.1) and names clients.
    let limit = only(3);
    let app = spawn_app_with(limited(|limits| {
        limits.status_reads_per_ip = limit;
        limits.trusted_proxies = "127.0.0.1".into();
    }))
    .await;
    let read_as = |client: &'static str| {
        let request = app
            .client
            .get(app.url(&format!("/v1/registrations/{}", Uuid::new_v4())))
            .header("X-Tracking-Token", "0".repeat(64))
            .header("X-Forwarded-For", client);
        async move { Answer::from(request.send().await.expect("request")).await }
    };

    // Act
    let mut within = Vec::new();
    for _ in 0..3 {
        within.push(read_as("198.51.100.1").await.status);
    }
    let over = read_as("198.51.100.1").await;
    let other_client = read_as("198.51.100.2").await;

    // Assert
    assert_eq!(within, [404, 404, 404], "reads within the limit reach the handler");
    assert_rate_limited(&over, limit);
    assert_eq!(other_client.status, 404);
}

/// Two vendors made through a gateway without small limits (making them
/// reads `/v1/me`), then a gateway with `edit`'s limits, which knows them.
async fn two_vendors_and(edit: impl FnOnce(&mut RateLimitSettings)) -> (TestApp, [crate::helpers::TestVendor; 2]) {
    let setup = spawn_app().await;
    let vendors = [setup.create_vendor(50).await, setup.create_vendor(50).await];
    (spawn_app_with(limited(edit)).await, vendors)
}

async fn record_sale(app: &TestApp, key: &str) -> Answer {
    let body = json!({"quantity": 1, "unit_price_clp": 1_500, "payment_method": "cash"});
    app.post("/v1/sales", &body, Some(key)).await
}

#[tokio::test]
async fn sales_over_the_per_key_limit_are_refused_and_other_vendors_are_not() {
    // Arrange
    let limit = only(3);
    let (app, [first, second]) = two_vendors_and(|limits| limits.sales_per_key = limit).await;

    // Act
    let mut within = Vec::new();
    for _ in 0..3 {
        within.push(record_sale(&app, &first.api_key).await.status);
    }
    let over = record_sale(&app, &first.api_key).await;
    // The limit follows the path the router matches, not its spelling.
    let sale = json!({"quantity": 1, "unit_price_clp": 1_500, "payment_method": "cash"});
    let respelled = app.post("/v1/%73ales", &sale, Some(&first.api_key)).await;
    let other_vendor = record_sale(&app, &second.api_key).await;
    let wrong_key = record_sale(&app, "mamochi_not-a-key").await;

    // Assert
    assert_eq!(within, [201, 201, 201]);
    assert_rate_limited(&over, limit);
    assert_rate_limited(&respelled, limit);
    assert_eq!(other_vendor.status, 201, "{:?}", other_vendor.body);
    assert_eq!(wrong_key.status, 401, "a wrong key is refused as before, not counted");
}

#[tokio::test]
async fn depletion_reports_over_the_per_cart_limit_are_refused_and_other_carts_are_not() {
    // Arrange
    let limit = only(2);
    let (app, [first, second]) = two_vendors_and(|limits| limits.depletions_per_cart = limit).await;
    let report = |key: String| {
        let app = &app;
        async move { app.post_raw("/v1/stock/depletions", "", Some(&key)).await }
    };

    // Act
    let mut within = Vec::new();
    for _ in 0..2 {
        within.push(report(first.api_key.clone()).await.status);
    }
    let over = report(first.api_key.clone()).await;
    let other_cart = report(second.api_key.clone()).await;
    let sale_after = record_sale(&app, &first.api_key).await;

    // Assert
    assert_eq!(within, [202, 202]);
    assert_rate_limited(&over, limit);
    assert_eq!(other_cart.status, 202, "{:?}", other_cart.body);
    assert_eq!(sale_after.status, 201, "sales have a limit of their own");
}

#[tokio::test]
async fn location_pings_and_cart_reports_have_per_cart_limits_of_their_own() {
    // Arrange
    let limit = only(2);
    let (app, [first, second]) = two_vendors_and(|limits| {
        limits.locations_per_cart = limit;
        limits.cart_reports_per_cart = limit;
    })
    .await;
    let ping = |key: String| {
        let app = &app;
        async move {
            let at = chrono::Utc::now().to_rfc3339();
            let body = json!({"latitude": -33.45, "longitude": -70.66, "accuracy_m": 10, "occurred_at": at});
            app.post("/v1/carts/me/locations", &body, Some(&key)).await
        }
    };
    let report = |key: String| {
        let app = &app;
        async move { app.post("/v1/carts/me/reports", &json!({"kind": "missing"}), Some(&key)).await }
    };

    // Act
    let pings_within = [ping(first.api_key.clone()).await.status, ping(first.api_key.clone()).await.status];
    let ping_over = ping(first.api_key.clone()).await;
    let reports_within = [report(first.api_key.clone()).await.status, report(first.api_key.clone()).await.status];
    let report_over = report(first.api_key.clone()).await;
    let other_cart = [ping(second.api_key.clone()).await.status, report(second.api_key.clone()).await.status];

    // Assert
    assert_eq!(pings_within, [202, 202]);
    assert_rate_limited(&ping_over, limit);
    assert_eq!(reports_within, [202, 202], "reports are not counted with pings");
    assert_rate_limited(&report_over, limit);
    assert_eq!(other_cart, [202, 202]);
}

#[tokio::test]
async fn vendor_reads_over_the_per_key_limit_are_refused_and_other_vendors_are_not() {
    // Arrange
    let limit = only(2);
    let (app, [first, second]) = two_vendors_and(|limits| limits.vendor_requests_per_key = limit).await;

    // Act
    let within =
        [app.get("/v1/me", Some(&first.api_key)).await, app.get("/v1/me/statements", Some(&first.api_key)).await];
    let over = app.get("/v1/me", Some(&first.api_key)).await;
    let other_vendor = app.get("/v1/me", Some(&second.api_key)).await;

    // Assert
    assert_eq!(within.map(|answer| answer.status), [200, 200]);
    assert_rate_limited(&over, limit);
    assert_eq!(other_vendor.status, 200);
}

#[tokio::test]
async fn admin_requests_over_the_per_token_limit_are_refused() {
    // Arrange
    let limit = only(2);
    let app = spawn_app_with(limited(|limits| limits.admin_per_token = limit)).await;
    let colleague = add_staff(&app.pool).await;
    let list = |token: String| {
        let app = &app;
        async move { app.get("/v1/admin/registrations", Some(&token)).await }
    };

    // Act
    let mine = || app.staff.token.clone();
    let within = [list(mine()).await.status, list(mine()).await.status];
    let over = list(mine()).await;
    let other_token = list(colleague.token.clone()).await;
    let wrong_token = list("not-a-staff-token".into()).await;

    // Assert
    assert_eq!(within, [200, 200]);
    assert_rate_limited(&over, limit);
    assert_eq!(other_token.status, 200, "another member of staff has a limit of their own");
    assert_eq!(wrong_token.status, 401, "a wrong token is refused as before, not counted");
}

#[tokio::test]
async fn a_payment_reference_must_follow_the_documented_format() {
    // Arrange
    let app = spawn_app().await;

    for reference in ["TX-991", "tx-12345678", "TX 12345678", "TX-12345678 ", "PAGO-1a2b3c4d-0"] {
        let mut body = form(true);
        body["payment_reference"] = json!(reference);

        // Act
        let answer = app.post("/v1/registrations", &body, None).await;

        // Assert
        assert_eq!(answer.error(), (422, "invalid_value", Some("payment_reference")), "{reference:?}");
        assert!(answer.body["error"]["message"].as_str().is_some_and(|m| m.contains("6 to 20 digits")));
    }
}

#[tokio::test]
async fn a_payment_reference_is_accepted_once_across_gateway_instances() {
    // Arrange: two gateways, as two replicas behind a load balancer.
    let (one, two) = (spawn_app().await, spawn_app().await);
    let used = payment_reference();
    let mut first = form(true);
    first["payment_reference"] = json!(used);
    assert_eq!(one.post("/v1/registrations", &first, None).await.status, 202);
    let contested = payment_reference();

    // Act
    let mut again = form(true);
    again["payment_reference"] = json!(used);
    let reused_elsewhere = two.post("/v1/registrations", &again, None).await;
    let racing = join_all((0..8).map(|index| {
        let app = if index % 2 == 0 { &one } else { &two };
        let mut body = form(true);
        body["payment_reference"] = json!(contested);
        async move { app.post("/v1/registrations", &body, None).await }
    }))
    .await;

    // Assert
    assert_eq!(reused_elsewhere.error(), (409, "payment_reference_used", Some("payment_reference")));
    let accepted = racing.iter().filter(|answer| answer.status == 202).count();
    let refused: Vec<_> = racing.iter().filter(|answer| answer.status != 202).map(Answer::error).collect();
    assert_eq!(accepted, 1, "exactly one of eight racing forms gets the reference: {refused:?}");
    assert!(refused.iter().all(|error| *error == (409, "payment_reference_used", Some("payment_reference"))));
}

#[tokio::test]
async fn the_tracking_token_is_refused_in_the_query_string_naming_the_header() {
    // Arrange
    let app = spawn_app().await;
    let answer = app.post("/v1/registrations", &form(false), None).await;
    let id = answer.body["registration_id"].as_str().expect("id").to_string();
    let token = answer.body["tracking_token"].as_str().expect("token").to_string();

    // Act
    let in_query = app.get(&format!("/v1/registrations/{id}?token={token}"), None).await;
    let in_both = Answer::from(
        app.client
            .get(app.url(&format!("/v1/registrations/{id}?token={token}")))
            .header("X-Tracking-Token", &token)
            .send()
            .await
            .expect("request"),
    )
    .await;
    let in_header = status_by_header(&app, &id, &token).await;

    // Assert
    for refused in [&in_query, &in_both] {
        assert_eq!(refused.error(), (400, "token_in_query", None));
        assert!(refused.body["error"]["message"].as_str().is_some_and(|m| m.contains("X-Tracking-Token")));
    }
    assert_eq!(in_header.status, 200);
    assert_eq!(in_header.body["registration_id"], id.as_str());
}
