//! Schema evolution on the real registry: a v2 of an event that adds a field
//! with a default interoperates with v1 in both directions, and a v3 that adds
//! a field without a default is refused with 409 and a message naming it.

use mamochi_testkit as kit;

use chrono::{DateTime, Utc};
use mamochi_events::codec::{split_header, EventCodec};
use mamochi_events::topics::SALES;
use mamochi_events::{PaymentMethod, SaleRecorded, SchemaSource};
use serde::{Deserialize, Serialize};

/// What a v2 consumer's generated type would look like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SaleRecordedV2 {
    sale_id: uuid::Uuid,
    vendor_id: uuid::Uuid,
    quantity: i32,
    unit_price_clp: i64,
    total_clp: i64,
    payment_method: PaymentMethod,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    occurred_at: DateTime<Utc>,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    recorded_at: DateTime<Utc>,
    customer_count: i32,
}

/// v1 plus one field; `default` decides whether the change is compatible.
fn with_field(base: &str, field: serde_json::Value) -> &'static str {
    let mut schema: serde_json::Value = serde_json::from_str(base).expect("v1 parses");
    schema["fields"].as_array_mut().expect("fields").push(field);
    Box::leak(serde_json::to_string_pretty(&schema).expect("serialises").into_boxed_str())
}

fn source(text: &'static str) -> SchemaSource {
    SchemaSource { file: "test", full_name: "cl.mamochi.events.SaleRecorded", text }
}

#[tokio::test]
async fn compatible_versions_interoperate_and_an_incompatible_one_is_refused() {
    // Arrange: v1 is the schema in schemas/; v2 adds a field with a default.
    let settings = kit::settings::load();
    // Each version lives in its own process in real life; each gets its own
    // codec here (the codec caches one schema per subject, as a producer should).
    let v1_app = EventCodec::new(&settings.registry.url);
    let v2_app = EventCodec::new(&settings.registry.url);
    let topic = kit::settings::unique("evolution");
    let v1 = SALES.info.value.expect("sales value schema");
    let v2_text = with_field(
        v1.text,
        serde_json::json!({"name": "customer_count", "type": "int", "default": 1, "doc": "Customers served."}),
    );
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now");
    let sale_v1 = SaleRecorded {
        sale_id: uuid::Uuid::new_v4(),
        vendor_id: uuid::Uuid::new_v4(),
        quantity: 3,
        unit_price_clp: 1_500,
        total_clp: 4_500,
        payment_method: PaymentMethod::Transfer,
        occurred_at: now,
        recorded_at: now,
        location: None,
    };

    // Act + Assert: a v1 producer, read by a v2 consumer, gets the default.
    let v1_bytes = v1_app.encode_with_schema(&topic, false, v1.text, &sale_v1).await.expect("v1 registers and encodes");
    let read_by_v2: SaleRecordedV2 =
        v2_app.decode_with_reader(source(v2_text), Some(&v1_bytes)).await.expect("v2 reads v1");
    assert_eq!(read_by_v2.customer_count, 1, "the default fills the missing field");
    assert_eq!(read_by_v2.sale_id, sale_v1.sale_id);
    assert_eq!(read_by_v2.total_clp, 4_500);

    // A v2 producer registers v2 (BACKWARD-compatible) and a v1 consumer reads it.
    let sale_v2 = SaleRecordedV2 { customer_count: 3, ..read_by_v2 };
    let v2_bytes = v2_app.encode_with_schema(&topic, false, v2_text, &sale_v2).await.expect("v2 registers and encodes");
    let (v1_id, _) = split_header(&v1_bytes).expect("header");
    let (v2_id, _) = split_header(&v2_bytes).expect("header");
    assert_ne!(v1_id, v2_id, "v2 is a new schema version");
    let read_by_v1: SaleRecorded = v1_app.decode(Some(&v2_bytes)).await.expect("v1 reads v2");
    assert_eq!(read_by_v1, sale_v1, "v1 ignores the field it does not know");

    // v3 adds a field without a default: old records could not be read.
    let v3_text = with_field(v2_text, serde_json::json!({"name": "tip_clp", "type": "long", "doc": "Tip."}));
    let response = reqwest::Client::new()
        .post(format!("{}/subjects/{topic}-value/versions", settings.registry.url))
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .json(&serde_json::json!({ "schema": v3_text }))
        .send()
        .await
        .expect("registry answers");
    assert_eq!(response.status().as_u16(), 409);
    let body: serde_json::Value = response.json().await.expect("json error body");
    assert_eq!(body["error_code"], 409);
    let message = body["message"].as_str().expect("message");
    assert!(message.contains("tip_clp"), "the refusal names the field: {message}");
}
