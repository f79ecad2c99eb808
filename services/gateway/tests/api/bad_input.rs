//! Every kind of bad input the issue lists, answered with the right status,
//! code and field — never a 500.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{form, spawn_app};

#[tokio::test]
async fn bad_registration_fields_are_422_naming_the_field() {
    // Arrange
    let app = spawn_app().await;
    let with = |field: &str, value: Value| {
        let mut body = form(true);
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = form(true);
        body.as_object_mut().expect("object").remove(field);
        body
    };
    let mut standard_with_reference = form(false);
    standard_with_reference["payment_reference"] = json!("TX-9999");
    let cases = [
        ("invalid RUT", with("rut", json!("12.345.678-9")), "invalid_value", "rut"),
        ("malformed RUT", with("rut", json!("12-345")), "invalid_value", "rut"),
        ("missing email", without("email"), "missing_field", "email"),
        ("null phone", with("phone", Value::Null), "missing_field", "phone"),
        ("paid as a string", with("paid", json!("yes")), "invalid_type", "paid"),
        ("name as a number", with("full_name", json!(42)), "invalid_type", "full_name"),
        ("bad plate", with("cart_plate", json!("AEIO12")), "invalid_value", "cart_plate"),
        ("bad phone", with("phone", json!("22345678")), "invalid_value", "phone"),
        ("bad email", with("email", json!("rosa@")), "invalid_value", "email"),
        ("paid without reference", without("payment_reference"), "missing_field", "payment_reference"),
        ("standard with reference", standard_with_reference, "invalid_value", "payment_reference"),
    ];

    for (case, body, code, field) in cases {
        // Act
        let answer = app.post("/v1/registrations", &body, None).await;

        // Assert
        assert_eq!(answer.error(), (422, code, Some(field)), "{case}: {:?}", answer.body);
    }
}

#[tokio::test]
async fn malformed_oversized_and_non_object_bodies_are_refused() {
    // Arrange
    let app = spawn_app().await;
    let huge = json!({"full_name": "x".repeat(app.settings.gateway.max_body_bytes + 1)}).to_string();

    // Act
    let malformed = app.post_raw("/v1/registrations", "{\"full_name\": ", None).await;
    let oversized = app.post_raw("/v1/registrations", huge, None).await;
    let array = app.post_raw("/v1/registrations", "[1, 2]", None).await;

    // Assert
    assert_eq!(malformed.error(), (400, "malformed_json", None));
    assert!(malformed.body["error"]["field"].is_null(), "field is present and null");
    assert_eq!(oversized.error(), (413, "payload_too_large", None));
    assert_eq!(array.status, 422);
}

#[tokio::test]
async fn bad_sales_are_422_naming_the_field() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;
    let sale = |overrides: Value| {
        let mut body = json!({"quantity": 1, "unit_price_clp": 1500, "payment_method": "cash"});
        for (field, value) in overrides.as_object().expect("object") {
            body[field] = value.clone();
        }
        body
    };
    let cases = [
        ("negative price", sale(json!({"unit_price_clp": -1500})), "invalid_value", "unit_price_clp"),
        ("absurd price", sale(json!({"unit_price_clp": 5_000_000_000_i64})), "invalid_value", "unit_price_clp"),
        ("fractional price", sale(json!({"unit_price_clp": 1500.5})), "invalid_type", "unit_price_clp"),
        ("zero quantity", sale(json!({"quantity": 0})), "invalid_value", "quantity"),
        ("quantity as text", sale(json!({"quantity": "three"})), "invalid_type", "quantity"),
        ("unknown method", sale(json!({"payment_method": "bitcoin"})), "invalid_value", "payment_method"),
        ("future sale", sale(json!({"occurred_at": "2999-01-01T00:00:00Z"})), "invalid_value", "occurred_at"),
        ("not a date", sale(json!({"occurred_at": "yesterday"})), "invalid_value", "occurred_at"),
    ];

    for (case, body, code, field) in cases {
        // Act
        let answer = app.post("/v1/sales", &body, Some(&vendor.api_key)).await;

        // Assert
        assert_eq!(answer.error(), (422, code, Some(field)), "{case}: {:?}", answer.body);
    }
    let mut missing = sale(json!({}));
    missing.as_object_mut().expect("object").remove("payment_method");
    let answer = app.post("/v1/sales", &missing, Some(&vendor.api_key)).await;
    assert_eq!(answer.error(), (422, "missing_field", Some("payment_method")));
    let malformed = app.post_raw("/v1/sales", "{quantity: 1}", Some(&vendor.api_key)).await;
    assert_eq!(malformed.error(), (400, "malformed_json", None));
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_401_and_another_vendors_resource_is_403() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;
    let other = app.create_vendor(10).await;
    let sale = json!({"quantity": 1, "unit_price_clp": 1500, "payment_method": "cash"});

    // Act
    let no_key = app.post("/v1/sales", &sale, None).await;
    let wrong_key = app.post("/v1/sales", &sale, Some("mamochi_not-a-real-key")).await;
    let no_key_me = app.get("/v1/me", None).await;
    let wrong_key_bad_json = app.post_raw("/v1/sales", "{", Some("mamochi_wrong")).await;
    let others = app.get(&format!("/v1/vendors/{}", other.member_id), Some(&vendor.api_key)).await;
    let unknown = app.get(&format!("/v1/vendors/{}", Uuid::new_v4()), Some(&vendor.api_key)).await;
    let malformed_id = app.get("/v1/vendors/not-an-id", Some(&vendor.api_key)).await;

    // Assert
    assert_eq!(no_key.error(), (401, "unauthorized", None));
    assert_eq!(no_key.headers.get("www-authenticate").map(|v| v.as_bytes()), Some(&b"Bearer"[..]));
    assert_eq!(wrong_key.error(), (401, "unauthorized", None));
    assert_eq!(no_key_me.error(), (401, "unauthorized", None));
    assert_eq!(wrong_key_bad_json.error(), (401, "unauthorized", None), "authentication comes before the body");
    assert_eq!(others.error(), (403, "forbidden", None));
    assert_eq!(unknown.error(), (403, "forbidden", None), "existence of other ids is not revealed");
    assert_eq!(malformed_id.error(), (404, "not_found", None));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let unknown = app.get("/v1/nothing-here", None).await;
    let wrong_method = delete_registrations(&app).await;

    // Assert
    assert_eq!(unknown.error(), (404, "route_not_found", None));
    assert_eq!(wrong_method.error(), (405, "method_not_allowed", None));
}

async fn delete_registrations(app: &crate::helpers::TestApp) -> crate::helpers::Answer {
    crate::helpers::Answer::from(app.client.delete(app.url("/v1/registrations")).send().await.expect("request")).await
}
