//! Sales and depletions: what reaches Kafka, idempotency, the stock rule,
//! a sale's location.
//! A test that asserts a sale was *not* recorded reads the topic up to
//! markers of its own written after the requests ([`sales_until_markers`]),
//! never until a quiet spell.

use std::time::Duration;

use mamochi_common::kafka;
use mamochi_events::{topics, PaymentMethod, SaleLocation, SaleRecorded, StockEvent, StockEventKind, VendorKey};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{spawn_app, Answer, Tail, TestApp, TestVendor};

/// The vendor's sales on the topic since `tail` started, up to a marker.
///
/// The gateway answers a sale only after Kafka acknowledged it, so every
/// sale it produced for the requests already answered lies before a record
/// written now, in whatever partition it went to. One marker sale of the
/// vendor (its own sale id, left out of the answer) is written to every
/// partition and the tail is read until all of them arrived: a sale missing
/// from the answer was never produced. Panics if the markers do not arrive.
pub(crate) async fn sales_until_markers(app: &TestApp, tail: &Tail, vendor: &TestVendor) -> Vec<SaleRecorded> {
    let producer: FutureProducer = kafka::producer(&app.settings.kafka, "gateway-test").expect("producer");
    let mut markers = Vec::new();
    for partition in 0..topics::SALES.info.partitions {
        let now = chrono::Utc::now();
        let marker = SaleRecorded {
            sale_id: Uuid::new_v4(),
            vendor_id: vendor.member_id,
            quantity: 1,
            unit_price_clp: 1,
            total_clp: 1,
            payment_method: PaymentMethod::Cash,
            occurred_at: now,
            recorded_at: now,
            location: None,
        };
        let key = VendorKey { vendor_id: vendor.member_id };
        let (key, value) = app.codec.encode(&topics::SALES, &key, &marker).await.expect("marker encodes");
        let record = FutureRecord::to(topics::SALES.name()).partition(partition).key(&key).payload(&value);
        producer.send(record, Timeout::After(Duration::from_secs(30))).await.expect("marker acknowledged");
        markers.push(marker.sale_id);
    }
    let seen = |records: &[(i32, VendorKey, SaleRecorded)]| {
        markers.iter().all(|marker| records.iter().any(|(_, _, sale)| sale.sale_id == *marker))
    };
    let records = tail.collect::<VendorKey, SaleRecorded>(&app.codec, Duration::from_secs(30), seen).await;
    assert!(seen(&records), "the tail never reached the markers");
    records
        .into_iter()
        .map(|(_, _, sale)| sale)
        .filter(|sale| sale.vendor_id == vendor.member_id && !markers.contains(&sale.sale_id))
        .collect()
}

async fn sell(app: &TestApp, key: &str, body: &serde_json::Value, idempotency_key: Option<&str>) -> Answer {
    let mut request = app.client.post(app.url("/v1/sales")).bearer_auth(key).json(body);
    if let Some(idempotency_key) = idempotency_key {
        request = request.header("Idempotency-Key", idempotency_key);
    }
    Answer::from(request.send().await.expect("request")).await
}

#[tokio::test]
async fn a_sale_is_recorded_on_the_sales_topic_keyed_by_vendor() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;
    let tail = Tail::start(&app.settings, &topics::SALES).await;

    // Act
    let answer =
        sell(&app, &vendor.api_key, &json!({"quantity": 3, "unit_price_clp": 1500, "payment_method": "credit"}), None)
            .await;

    // Assert
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    assert_eq!(answer.body["vendor_id"], vendor.member_id.to_string());
    assert_eq!(answer.body["total_clp"], 4500);
    assert_eq!(answer.body["payment_method"], "credit");
    assert!(answer.body["occurred_at"].is_string(), "defaults to platform now");
    let records = tail
        .collect::<VendorKey, SaleRecorded>(&app.codec, Duration::from_secs(10), |r| {
            r.iter().any(|(_, _, v)| v.vendor_id == vendor.member_id)
        })
        .await;
    let (_, key, sale) = records.iter().find(|(_, _, v)| v.vendor_id == vendor.member_id).expect("sale on the topic");
    assert_eq!(key.vendor_id, vendor.member_id);
    assert_eq!(sale.sale_id.to_string(), answer.body["sale_id"].as_str().expect("sale_id"));
    assert_eq!((sale.quantity, sale.unit_price_clp, sale.total_clp), (3, 1500, 4500));
    assert_eq!(sale.payment_method, PaymentMethod::Credit);
}

#[tokio::test]
async fn a_repeated_idempotency_key_records_one_sale_and_returns_the_first_answer() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;
    let tail = Tail::start(&app.settings, &topics::SALES).await;
    let body = json!({"quantity": 2, "unit_price_clp": 2000, "payment_method": "cash"});
    let key = format!("sale-{}", vendor.member_id);

    // Act
    let first = sell(&app, &vendor.api_key, &body, Some(&key)).await;
    let second = sell(&app, &vendor.api_key, &body, Some(&key)).await;
    let other_body = sell(
        &app,
        &vendor.api_key,
        &json!({"quantity": 5, "unit_price_clp": 2000, "payment_method": "cash"}),
        Some(&key),
    )
    .await;

    // Assert
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(second.status, 201);
    assert_eq!(second.body, first.body, "the same answer, same sale_id");
    assert_eq!(other_body.error(), (422, "idempotency_key_reused", Some("Idempotency-Key")));
    let mine = sales_until_markers(&app, &tail, &vendor).await;
    assert_eq!(mine.len(), 1, "one record on the topic: {mine:?}");
    assert_eq!(mine[0].sale_id.to_string(), first.body["sale_id"].as_str().expect("sale_id"));
}

#[tokio::test]
async fn a_sale_larger_than_the_stock_is_refused_and_not_recorded() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(2).await;
    let tail = Tail::start(&app.settings, &topics::SALES).await;

    // Act
    let answer =
        sell(&app, &vendor.api_key, &json!({"quantity": 3, "unit_price_clp": 1000, "payment_method": "debit"}), None)
            .await;
    let within =
        sell(&app, &vendor.api_key, &json!({"quantity": 2, "unit_price_clp": 1000, "payment_method": "debit"}), None)
            .await;

    // Assert
    assert_eq!(answer.error(), (409, "insufficient_stock", Some("quantity")));
    assert_eq!(within.status, 201, "selling exactly the stock is allowed");
    let mine = sales_until_markers(&app, &tail, &vendor).await;
    assert_eq!(mine.len(), 1, "only the sale within stock: {mine:?}");
    assert_eq!(mine[0].quantity, 2);
    assert_eq!(mine[0].sale_id.to_string(), within.body["sale_id"].as_str().expect("sale_id"));
}

#[tokio::test]
async fn a_vendor_reports_a_depletion() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(0).await;
    let tail = Tail::start(&app.settings, &topics::STOCK).await;

    // Act
    let with_note = app.post("/v1/stock/depletions", &json!({"note": "sin huesillos"}), Some(&vendor.api_key)).await;
    let empty = Answer::from(
        app.client.post(app.url("/v1/stock/depletions")).bearer_auth(&vendor.api_key).send().await.expect("request"),
    )
    .await;
    let bad_note = app.post("/v1/stock/depletions", &json!({"note": 7}), Some(&vendor.api_key)).await;

    // Assert
    assert_eq!(with_note.status, 202, "{:?}", with_note.body);
    assert_eq!(empty.status, 202, "the body is optional: {:?}", empty.body);
    assert_eq!(bad_note.error(), (422, "invalid_type", Some("note")));
    let records = tail
        .collect::<VendorKey, StockEvent>(&app.codec, Duration::from_secs(10), |r| {
            r.iter().filter(|(_, _, v)| v.vendor_id == vendor.member_id).count() >= 2
        })
        .await;
    let mine: Vec<_> = records.iter().filter(|(_, _, v)| v.vendor_id == vendor.member_id).collect();
    assert_eq!(mine.len(), 2);
    for (_, key, event) in mine {
        assert_eq!(key.vendor_id, vendor.member_id);
        assert_eq!((event.kind, event.quantity, event.stock_after), (StockEventKind::Depleted, 0, 0));
        assert_eq!(event.reason.as_deref(), Some("reported by vendor"));
    }
    assert_eq!(with_note.body["event_id"].as_str().map(str::len), Some(36));
}

#[tokio::test]
async fn concurrent_requests_with_one_key_record_one_sale() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;
    let tail = Tail::start(&app.settings, &topics::SALES).await;
    let body = json!({"quantity": 1, "unit_price_clp": 1200, "payment_method": "transfer"});
    let key = format!("race-{}", vendor.member_id);

    // Act
    let answers = futures::future::join_all((0..5).map(|_| sell(&app, &vendor.api_key, &body, Some(&key)))).await;

    // Assert
    let created: Vec<_> = answers.iter().filter(|a| a.status == 201).collect();
    assert!(!created.is_empty(), "{answers:?}");
    assert!(created.iter().all(|a| a.body["sale_id"] == created[0].body["sale_id"]), "one sale id: {answers:?}");
    for answer in answers.iter().filter(|a| a.status != 201) {
        assert_eq!(answer.error(), (409, "idempotency_key_in_flight", Some("Idempotency-Key")));
    }
    let mine = sales_until_markers(&app, &tail, &vendor).await;
    assert_eq!(mine.len(), 1, "one record on the topic: {mine:?}");
    assert_eq!(mine[0].sale_id.to_string(), created[0].body["sale_id"].as_str().expect("sale_id"));
    let replay = sell(&app, &vendor.api_key, &body, Some(&key)).await;
    assert_eq!(replay.body, created[0].body, "once settled, a repeat gets the first answer");
}

#[tokio::test]
async fn a_key_refused_for_stock_stays_free_and_a_recorded_key_is_answered_whatever_the_stock() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(2).await;
    let tail = Tail::start(&app.settings, &topics::SALES).await;
    let too_many = json!({"quantity": 3, "unit_price_clp": 1000, "payment_method": "cash"});
    let two = json!({"quantity": 2, "unit_price_clp": 1000, "payment_method": "cash"});
    let refused_key = format!("refused-{}", vendor.member_id);
    let recorded_key = format!("recorded-{}", vendor.member_id);

    // Act
    let refused = sell(&app, &vendor.api_key, &too_many, Some(&refused_key)).await;
    let first = sell(&app, &vendor.api_key, &two, Some(&recorded_key)).await;
    // The distributor would take the cart to 0 after that sale.
    app.set_stock(&vendor, 0).await;
    let repeat = sell(&app, &vendor.api_key, &two, Some(&recorded_key)).await;
    app.set_stock(&vendor, 5).await;
    let retried = sell(&app, &vendor.api_key, &too_many, Some(&refused_key)).await;

    // Assert
    assert_eq!(refused.error(), (409, "insufficient_stock", Some("quantity")));
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(repeat.status, 201, "a repeat is answered from its claim, not refused for stock: {:?}", repeat.body);
    assert_eq!(repeat.body, first.body);
    assert_eq!(retried.status, 201, "the refused key was released, so the retry records the sale: {:?}", retried.body);
    let mine = sales_until_markers(&app, &tail, &vendor).await;
    let mut quantities: Vec<i32> = mine.iter().map(|sale| sale.quantity).collect();
    quantities.sort_unstable();
    assert_eq!(quantities, vec![2, 3], "the recorded sale once, the retried one once");
}

#[tokio::test]
async fn a_sale_with_a_location_carries_it_into_the_recorded_event() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;
    let tail = Tail::start(&app.settings, &topics::SALES).await;
    let located = json!({"quantity": 2, "unit_price_clp": 1500, "payment_method": "cash",
        "location": {"latitude": -33.4372, "longitude": -70.6506, "accuracy_m": 12.5}});
    let without_accuracy = json!({"quantity": 1, "unit_price_clp": 1500, "payment_method": "cash",
        "location": {"latitude": -90, "longitude": 180}});
    let unlocated = json!({"quantity": 3, "unit_price_clp": 1500, "payment_method": "cash", "location": null});

    // Act
    let first = sell(&app, &vendor.api_key, &located, None).await;
    let second = sell(&app, &vendor.api_key, &without_accuracy, None).await;
    let third = sell(&app, &vendor.api_key, &unlocated, None).await;

    // Assert
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(first.body["location"], json!({"latitude": -33.4372, "longitude": -70.6506, "accuracy_m": 12.5}));
    assert_eq!(second.status, 201, "accuracy may be left out and the limits are inside: {:?}", second.body);
    assert_eq!(third.status, 201, "{:?}", third.body);
    assert_eq!(third.body["location"], serde_json::Value::Null, "{:?}", third.body);
    assert_eq!(second.body["location"]["accuracy_m"], serde_json::Value::Null, "{:?}", second.body);
    let mine = sales_until_markers(&app, &tail, &vendor).await;
    let by_quantity = |quantity: i32| {
        let sale = mine.iter().find(|sale| sale.quantity == quantity).unwrap_or_else(|| panic!("{mine:?}"));
        sale.location.clone()
    };
    assert_eq!(mine.len(), 3, "{mine:?}");
    assert_eq!(by_quantity(2), Some(SaleLocation { latitude: -33.4372, longitude: -70.6506, accuracy_m: Some(12.5) }));
    assert_eq!(by_quantity(1), Some(SaleLocation { latitude: -90.0, longitude: 180.0, accuracy_m: None }));
    assert_eq!(by_quantity(3), None);
}

#[tokio::test]
async fn a_location_out_of_range_is_refused_naming_its_field_and_nothing_is_recorded() {
    // Arrange
    let app = spawn_app().await;
    let vendor = app.create_vendor(10).await;
    let tail = Tail::start(&app.settings, &topics::SALES).await;
    let with = |location: serde_json::Value| json!({"quantity": 1, "unit_price_clp": 1000, "payment_method": "debit", "location": location});
    let cases = [
        (with(json!({"latitude": 90.5, "longitude": -70.6, "accuracy_m": 10})), "invalid_value", "location.latitude"),
        (with(json!({"latitude": -33.4, "longitude": -180.5})), "invalid_value", "location.longitude"),
        (with(json!({"latitude": -33.4, "longitude": -70.6, "accuracy_m": 0})), "invalid_value", "location.accuracy_m"),
        (
            with(json!({"latitude": -33.4, "longitude": -70.6, "accuracy_m": 10_001})),
            "invalid_value",
            "location.accuracy_m",
        ),
        (with(json!({"latitude": "south", "longitude": -70.6})), "invalid_type", "location.latitude"),
        (with(json!({"longitude": -70.6})), "missing_field", "location.latitude"),
        (with(json!([-33.4, -70.6])), "invalid_type", "location"),
    ];

    // Act
    let mut answers = Vec::new();
    for (body, _, _) in &cases {
        answers.push(sell(&app, &vendor.api_key, body, None).await);
    }

    // Assert
    for (answer, (body, code, field)) in answers.iter().zip(&cases) {
        assert_eq!(answer.error(), (422, *code, Some(*field)), "{body}: {:?}", answer.body);
    }
    let mine = sales_until_markers(&app, &tail, &vendor).await;
    assert!(mine.is_empty(), "a refused sale is not recorded: {mine:?}");
}
