//! Cart tracking: location pings are validated field by field, land on the
//! cart's own partition and come back from `GET /v1/carts/me/location`;
//! missing/found reports (vendor's and staff's) land on the report lane,
//! partition 0, which no ping ever takes; staff page through the carts.
//! Every assertion is about this test's own vendors, so other traffic on
//! the shared stack does not matter.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use mamochi_events::{topics, CartTrackingEvent, CartTrackingEventKind, VendorKey};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, Answer, Tail, TestApp, TestVendor};

const LOCATIONS: &str = "/v1/carts/me/locations";
const LOCATION: &str = "/v1/carts/me/location";
const REPORTS: &str = "/v1/carts/me/reports";

/// A valid ping taken `ago` seconds before now, at a latitude of its own.
fn ping(latitude: f64, ago: i64) -> Value {
    let at = Utc::now() - chrono::Duration::seconds(ago);
    json!({
        "latitude": latitude,
        "longitude": -70.6483,
        "accuracy_m": 12.5,
        "occurred_at": at.to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

/// Waits until `GET /v1/carts/me/location` shows `latitude`; panics after 15 s.
async fn location_shows(app: &TestApp, vendor: &TestVendor, latitude: f64) -> Answer {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let answer = app.get(LOCATION, Some(&vendor.api_key)).await;
        if answer.status == 200 && answer.body["latitude"] == latitude {
            return answer;
        }
        assert!(tokio::time::Instant::now() < deadline, "the location never showed {latitude}: {answer:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn bad_locations_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;
    let key = Some(vendor.api_key.as_str());
    let future = (Utc::now() + chrono::Duration::seconds(300)).to_rfc3339();
    let stale =
        (Utc::now() - chrono::Duration::seconds(app.settings.gateway.location_max_age_secs as i64 + 120)).to_rfc3339();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("latitude", json!(90.01), "latitude above 90"),
        ("latitude", json!(-91), "latitude below -90"),
        ("latitude", json!("south"), "latitude not a number"),
        ("longitude", json!(180.5), "longitude above 180"),
        ("longitude", json!(-181), "longitude below -180"),
        ("accuracy_m", json!(0), "accuracy of zero"),
        ("accuracy_m", json!(-3), "negative accuracy"),
        ("accuracy_m", json!(10_001), "accuracy over 10 km"),
        ("occurred_at", json!(future), "five minutes in the future"),
        ("occurred_at", json!(stale), "older than location_max_age_secs"),
        ("occurred_at", json!("yesterday noon"), "not RFC 3339"),
        ("occurred_at", Value::Null, "missing"),
    ];
    for (field, value, what) in cases {
        let mut body = ping(-33.4372, 5);
        body[field] = value;
        let answer = app.post(LOCATIONS, &body, key).await;
        assert_eq!(answer.status, 422, "{what}: {answer:?}");
        assert_eq!(answer.error().2, Some(field), "{what}: {answer:?}");
    }
    let malformed = app.post_raw(LOCATIONS, "{\"latitude\": -33.4,", key).await;
    assert_eq!(malformed.error(), (400, "malformed_json", None));
    let not_an_object = app.post(LOCATIONS, &json!([1, 2]), key).await;
    assert_eq!((not_an_object.status, not_an_object.error().1), (422, "invalid_body"));

    let report = app.post(REPORTS, &json!({"kind": "stolen"}), key).await;
    assert_eq!(report.error(), (422, "invalid_value", Some("kind")));
    let report = app.post(REPORTS, &json!({"kind": "missing", "note": "n".repeat(501)}), key).await;
    assert_eq!(report.error(), (422, "invalid_value", Some("note")));

    // Nothing valid was sent, so the cart has no location.
    let none = app.get(LOCATION, key).await;
    assert_eq!(none.error(), (404, "no_location", None));
}

#[tokio::test]
async fn a_location_comes_back_with_its_age_once_the_view_has_read_it() {
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;
    let body = ping(-33.4569, 30);
    let accepted = app.post(LOCATIONS, &body, Some(&vendor.api_key)).await;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    assert!(accepted.body["event_id"].as_str().and_then(|id| Uuid::parse_str(id).ok()).is_some());

    let shown = location_shows(&app, &vendor, -33.4569).await;
    assert_eq!(shown.body["longitude"], -70.6483);
    assert_eq!(shown.body["accuracy_m"], 12.5);
    let occurred_at = chrono::DateTime::parse_from_rfc3339(shown.body["occurred_at"].as_str().expect("occurred_at"))
        .expect("RFC 3339");
    let sent = chrono::DateTime::parse_from_rfc3339(body["occurred_at"].as_str().expect("sent")).expect("RFC 3339");
    assert_eq!(occurred_at, sent);
    let age = shown.body["age_secs"].as_i64().expect("age_secs");
    assert!((30..=90).contains(&age), "the ping was taken 30 s before it was sent: age {age}");

    // An older ping arriving later does not hide the newer position.
    assert_eq!(app.post(LOCATIONS, &ping(-33.9, 120), Some(&vendor.api_key)).await.status, 202);
    assert_eq!(app.post(LOCATIONS, &ping(-33.5, 1), Some(&vendor.api_key)).await.status, 202);
    let newest = location_shows(&app, &vendor, -33.5).await;
    assert!(newest.body["age_secs"].as_i64().is_some_and(|age| age < 60), "{newest:?}");
}

#[tokio::test]
async fn reports_take_partition_zero_and_pings_never_do() {
    let app = spawn_app().await;
    let tail = Tail::start(&app.settings, &topics::CART_TRACKING).await;
    let vendors = [app.create_vendor(10).await, app.create_vendor(10).await, app.create_vendor(10).await];
    let mut pings = Vec::new();
    for (n, vendor) in vendors.iter().enumerate() {
        for k in 0..3 {
            let answer = app.post(LOCATIONS, &ping(-33.0 - n as f64 / 10.0, k), Some(&vendor.api_key)).await;
            assert_eq!(answer.status, 202, "{answer:?}");
            pings.push(answer.body["event_id"].as_str().expect("event_id").to_string());
        }
    }
    let missing = app
        .post(REPORTS, &json!({"kind": "missing", "note": "se lo llevaron en la feria"}), Some(&vendors[0].api_key))
        .await;
    assert_eq!(missing.status, 202, "{missing:?}");
    let path = format!("/v1/admin/carts/{}/reports", vendors[0].member_id);
    let found = app.post(&path, &json!({"kind": "found"}), Some(&app.staff.token)).await;
    assert_eq!(found.status, 202, "{found:?}");
    let reports = [missing, found].map(|answer| answer.body["event_id"].as_str().expect("event_id").to_string());

    let ours = |records: &[(i32, VendorKey, CartTrackingEvent)]| {
        let seen: Vec<String> = records.iter().map(|(_, _, event)| event.event_id.to_string()).collect();
        pings.iter().chain(&reports).all(|id| seen.contains(id))
    };
    let records = tail.collect::<VendorKey, CartTrackingEvent>(&app.codec, Duration::from_secs(30), ours).await;
    assert!(ours(&records), "not every event arrived");
    let mut ping_partitions: HashMap<Uuid, i32> = HashMap::new();
    for (partition, key, event) in records {
        let id = event.event_id.to_string();
        if reports.contains(&id) {
            assert_eq!(partition, topics::CART_REPORT_PARTITION, "{event:?}");
            assert_eq!(key.vendor_id, vendors[0].member_id);
            let expected = if id == reports[0] {
                (CartTrackingEventKind::Missing, "vendor", Some("se lo llevaron en la feria"))
            } else {
                (CartTrackingEventKind::Found, app.staff.name.as_str(), None)
            };
            assert_eq!((event.kind, event.reported_by.as_str(), event.note.as_deref()), expected);
        } else if pings.contains(&id) {
            assert!((1..topics::CART_TRACKING.info.partitions).contains(&partition), "ping on {partition}");
            assert_eq!(event.kind, CartTrackingEventKind::Location);
            assert_eq!(key.vendor_id, event.vendor_id);
            // One cart's pings share a partition, so they stay in order.
            assert_eq!(*ping_partitions.entry(event.vendor_id).or_insert(partition), partition, "{event:?}");
        }
    }
}

/// Every cart on every page of `GET /v1/admin/carts` (per_page 100).
async fn every_listed_cart(app: &TestApp) -> Vec<Value> {
    let mut carts = Vec::new();
    for page in 1.. {
        let answer = app.get(&format!("/v1/admin/carts?page={page}&per_page=100"), Some(&app.staff.token)).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let listed = answer.body["carts"].as_array().expect("carts").clone();
        if listed.is_empty() {
            return carts;
        }
        carts.extend(listed);
    }
    carts
}

#[tokio::test]
async fn staff_page_through_carts_with_their_last_location() {
    let app = spawn_app().await;
    let vendors = [app.create_vendor(10).await, app.create_vendor(10).await, app.create_vendor(10).await];
    for (n, vendor) in vendors.iter().enumerate() {
        let latitude = -34.0 - n as f64 / 100.0;
        assert_eq!(app.post(LOCATIONS, &ping(latitude, 2), Some(&vendor.api_key)).await.status, 202);
        location_shows(&app, vendor, latitude).await;
    }
    let path = format!("/v1/admin/carts/{}/reports", vendors[1].member_id);
    assert_eq!(app.post(&path, &json!({"kind": "missing"}), Some(&app.staff.token)).await.status, 202);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let ours = loop {
        let carts = every_listed_cart(&app).await;
        let ours: Vec<Value> = vendors
            .iter()
            .filter_map(|vendor| carts.iter().find(|cart| cart["vendor_id"] == vendor.member_id.to_string()).cloned())
            .collect();
        if ours.len() == 3 && ours[1]["missing"] == true {
            let ids: Vec<&str> = carts.iter().filter_map(|cart| cart["vendor_id"].as_str()).collect();
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(ids, sorted, "pages are in vendor order and no cart is listed twice");
            break ours;
        }
        assert!(tokio::time::Instant::now() < deadline, "the list never showed the three carts: {ours:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (n, cart) in ours.iter().enumerate() {
        assert_eq!(cart["location"]["latitude"], -34.0 - n as f64 / 100.0);
        assert!(cart["location"]["age_secs"].as_i64().is_some_and(|age| (0..120).contains(&age)), "{cart}");
        assert_eq!(cart["missing"], n == 1, "{cart}");
    }

    let first = app.get("/v1/admin/carts?per_page=1", Some(&app.staff.token)).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body["carts"].as_array().map(Vec::len), Some(1));
    assert_eq!((first.body["page"].as_u64(), first.body["per_page"].as_u64()), (Some(1), Some(1)));
    assert!(first.body["total"].as_u64().is_some_and(|total| total >= 3), "{first:?}");
    let beyond = app.get("/v1/admin/carts?page=1000000&per_page=100", Some(&app.staff.token)).await;
    assert_eq!(beyond.body["carts"], json!([]), "{beyond:?}");

    for (query, field) in
        [("per_page=0", "per_page"), ("per_page=101", "per_page"), ("page=0", "page"), ("page=x", "page")]
    {
        let answer = app.get(&format!("/v1/admin/carts?{query}"), Some(&app.staff.token)).await;
        assert_eq!(answer.error(), (422, "invalid_value", Some(field)), "{query}");
    }
    let unknown = format!("/v1/admin/carts/{}/reports", Uuid::new_v4());
    assert_eq!(app.post(&unknown, &json!({"kind": "found"}), Some(&app.staff.token)).await.error().0, 404);
}

#[tokio::test]
async fn every_cart_route_needs_its_credential() {
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;
    let staff_path = format!("/v1/admin/carts/{}/reports", vendor.member_id);
    for credential in [None, Some("mamochi_not-a-key")] {
        assert_eq!(app.post(LOCATIONS, &ping(-33.4, 1), credential).await.error().0, 401);
        assert_eq!(app.get(LOCATION, credential).await.error().0, 401);
        assert_eq!(app.post(REPORTS, &json!({"kind": "missing"}), credential).await.error().0, 401);
        assert_eq!(app.get("/v1/admin/carts", credential).await.error().0, 401);
        assert_eq!(app.post(&staff_path, &json!({"kind": "missing"}), credential).await.error().0, 401);
    }
    // A vendor key is not a staff token.
    assert_eq!(app.get("/v1/admin/carts", Some(&vendor.api_key)).await.error().0, 401);
    assert_eq!(app.post(&staff_path, &json!({"kind": "found"}), Some(&vendor.api_key)).await.error().0, 401);
}
