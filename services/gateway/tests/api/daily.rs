//! `GET /v1/me/stats/daily`: sales recorded through `POST /v1/sales`, counted
//! by the accounting service (running in this process, its own consumer
//! group), read back as one Santiago day's figures; and the 422s naming
//! `date`.

use std::time::Duration;

use chrono::{Duration as Span, NaiveTime, TimeZone};
use mamochi_common::clock::Clock;
use mamochi_events::topics;
use mamochi_rules::week::ZONE;
use mamochi_testkit::service::InProcess;
use mamochi_testkit::wait::eventually;
use mamochi_testkit::{self as kit, ports};
use serde_json::json;

use crate::helpers::{settings, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_figures_are_the_sales_recorded_that_santiago_day() {
    // Arrange: a gateway, and accounting reading the sales topic from its
    // current end in a group of its own.
    let app = spawn_app().await;
    let vendor = app.create_vendor(50).await;
    let mut accounting_settings = settings();
    kit::settings::own_groups(&mut accounting_settings, &[(mamochi_accounting::GROUP, topics::SALES.name())]);
    accounting_settings.accounting.ops_listen = ports::free_listen();
    let accounting =
        InProcess::spawn(|token| async move { mamochi_accounting::run(&accounting_settings, token).await });
    // A whole Santiago day two days ago: inside the gateway's 30-day window.
    let now = Clock::from_settings(&app.settings.time).expect("clock").now();
    let day = (now - Span::days(2)).with_timezone(&ZONE).date_naive();
    let at = |hour: u32, minute: u32| {
        let local = day.and_time(NaiveTime::from_hms_opt(hour, minute, 0).expect("time"));
        ZONE.from_local_datetime(&local).earliest().expect("a local time that exists").to_rfc3339()
    };
    // (local time, quantity, unit price): hours 9 and 14 tie at two sales
    // each, so the busiest hour is the earlier one.
    let sales = [
        (at(9, 5), 2, 1_500),
        (at(9, 40), 1, 1_000),
        (at(14, 0), 3, 1_200),
        (at(14, 59), 1, 2_000),
        (at(20, 30), 1, 900),
    ];

    // Act
    for (occurred_at, quantity, price) in &sales {
        let answer = app
            .post(
                "/v1/sales",
                &json!({"quantity": quantity, "unit_price_clp": price, "payment_method": "cash", "occurred_at": occurred_at}),
                Some(&vendor.api_key),
            )
            .await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
    }
    let path = format!("/v1/me/stats/daily?date={}", day.format("%Y-%m-%d"));
    let figures = eventually(Duration::from_secs(60), "accounting counted every sale", || async {
        let answer = app.get(&path, Some(&vendor.api_key)).await;
        (answer.status == 200 && answer.body["sales"] == sales.len()).then_some(answer.body)
    })
    .await;
    let next_day = app
        .get(&format!("/v1/me/stats/daily?date={}", (day + Span::days(1)).format("%Y-%m-%d")), Some(&vendor.api_key))
        .await;
    accounting.stop().await;

    // Assert: 3000 + 1000 + 3600 + 2000 + 900 = 10500 over 5 sales.
    assert_eq!(
        figures,
        json!({
            "date": day.format("%Y-%m-%d").to_string(),
            "timezone": "America/Santiago",
            "sales": 5,
            "units": 8,
            "earnings_clp": 10_500,
            "average_ticket_clp": 2_100,
            "busiest_hour": "09:00",
            "hours": [
                {"hour": 9, "sales": 2, "units": 3, "earnings_clp": 4_000},
                {"hour": 14, "sales": 2, "units": 4, "earnings_clp": 5_600},
                {"hour": 20, "sales": 1, "units": 1, "earnings_clp": 900},
            ],
        })
    );
    assert_eq!(next_day.status, 200);
    assert_eq!(
        (next_day.body["sales"].clone(), next_day.body["earnings_clp"].clone(), next_day.body["busiest_hour"].clone()),
        (json!(0), json!(0), json!(null)),
        "a day without sales is zeros"
    );
    assert_eq!(next_day.body["hours"], json!([]));
}

#[tokio::test]
async fn a_missing_malformed_or_unreal_date_is_422_naming_date() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(1).await;

    // Act
    let missing = app.get("/v1/me/stats/daily", Some(&vendor.api_key)).await;
    let cases = ["2026-4-4", "04-04-2026", "2026-02-29", "2026-13-01", "2026-04-04T00:00", "yesterday", ""];
    let mut invalid = Vec::new();
    for raw in cases {
        invalid.push((raw, app.get(&format!("/v1/me/stats/daily?date={raw}"), Some(&vendor.api_key)).await));
    }
    let anonymous = app.get("/v1/me/stats/daily?date=2026-04-04", None).await;
    let quiet_dst_day = app.get("/v1/me/stats/daily?date=2026-09-06", Some(&vendor.api_key)).await;

    // Assert
    assert_eq!(missing.error(), (422, "missing_field", Some("date")), "{:?}", missing.body);
    for (raw, answer) in &invalid {
        assert_eq!(answer.error(), (422, "invalid_value", Some("date")), "{raw}: {:?}", answer.body);
    }
    assert_eq!(anonymous.status, 401);
    assert_eq!(quiet_dst_day.status, 200);
    assert_eq!(quiet_dst_day.body["date"], "2026-09-06");
    assert_eq!(quiet_dst_day.body["sales"], 0);
}
