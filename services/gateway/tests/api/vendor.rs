//! A vendor's own reads: profile and stock, weekly summary, statements.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::spawn_app;

#[tokio::test]
async fn me_shows_the_member_and_the_carts_stock() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(7).await;

    // Act
    let me = app.get("/v1/me", Some(&vendor.api_key)).await;
    let own = app.get(&format!("/v1/vendors/{}", vendor.member_id), Some(&vendor.api_key)).await;

    // Assert
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["member_id"], vendor.member_id.to_string());
    assert_eq!(me.body["email"], vendor.email.as_str());
    assert_eq!(me.body["stock"], 7);
    assert_eq!(me.body["cart_plate"], "BCDF12");
    assert!(me.body["member_since"].is_string());
    assert_eq!(own.body, me.body);
}

#[tokio::test]
async fn the_weekly_summary_reads_accountings_aggregate_and_defaults_to_zero() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(5).await;
    app.sql(&format!(
        "INSERT INTO weekly_sales (vendor_id, iso_week, week_start, week_end, sales_count, units, earnings_clp, closed_at) \
         VALUES ('{}', '2026-W40', '2026-09-28T03:00:00Z', '2026-10-05T03:00:00Z', 3, 7, 10000, now())",
        vendor.member_id
    ))
    .await;

    // Act
    let week = app.get("/v1/me/sales/summary?week=2026-W40", Some(&vendor.api_key)).await;
    let current = app.get("/v1/me/sales/summary", Some(&vendor.api_key)).await;
    let malformed = app.get("/v1/me/sales/summary?week=2026-40", Some(&vendor.api_key)).await;

    // Assert
    assert_eq!(
        week.body,
        json!({"iso_week": "2026-W40", "sales_count": 3, "units": 7, "earnings_clp": 10000, "average_ticket_clp": 3333, "closed": true})
    );
    assert_eq!(current.status, 200);
    assert!(current.body["iso_week"].as_str().is_some_and(|w| w.len() == 8 && w.contains("-W")));
    assert_eq!((current.body["sales_count"].clone(), current.body["closed"].clone()), (json!(0), json!(false)));
    assert_eq!(malformed.error(), (422, "invalid_value", Some("week")));
}

#[tokio::test]
async fn statements_are_listed_newest_first() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(5).await;
    for (week, count) in [("2026-W45", 10), ("2026-W46", 12)] {
        app.sql(&format!(
            "INSERT INTO statements (statement_id, vendor_id, iso_week, sales_count, units, earnings_clp, average_ticket_clp, issued_at) \
             VALUES ('{}', '{}', '{week}', {count}, {count}, {}, 1500, now())",
            Uuid::new_v4(),
            vendor.member_id,
            count * 1500
        ))
        .await;
    }

    // Act
    let answer = app.get("/v1/me/statements", Some(&vendor.api_key)).await;

    // Assert
    assert_eq!(answer.status, 200);
    let statements = answer.body["statements"].as_array().expect("list");
    let weeks: Vec<_> = statements.iter().map(|s| s["iso_week"].as_str().unwrap_or_default()).collect();
    assert_eq!(weeks, ["2026-W46", "2026-W45"]);
    assert_eq!(statements[0]["earnings_clp"], 18000);
}
