//! The Rust client our producers use, `schema_registry_converter` 6, encodes
//! and decodes through this registry unchanged.

use apache_avro::types::Value;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{SchemaType, SubjectNameStrategy, SuppliedSchema};
use serde_json::json;

use crate::helpers::spawn_app;

const SALE: &str = r#"{"type":"record","name":"Sale","namespace":"cl.mamochi","fields":[{"name":"vendor","type":"string"},{"name":"amount","type":"long"}]}"#;

#[tokio::test]
async fn schema_registry_converter_round_trips_a_record() {
    let app = spawn_app().await;
    let settings = SrSettings::new(app.address.clone());
    let supplied = SuppliedSchema::new(Some("cl.mamochi.Sale".to_string()), SchemaType::Avro, SALE.to_string());
    let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema("sales".to_string(), false, supplied);
    let fields = vec![("vendor", Value::String("vendor-1".to_string())), ("amount", Value::Long(1500))];

    let bytes = AvroEncoder::new(settings.clone()).encode(fields, strategy).await.expect("encodes");
    let decoded = AvroDecoder::new(settings).decode(Some(&bytes)).await.expect("decodes");

    assert_eq!(bytes[0], 0, "Confluent's wire format starts with magic byte 0");
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    assert_eq!(app.get("/subjects/sales-value/versions/latest").await.ok()["id"], json!(id));
    assert_eq!(
        decoded.value,
        Value::Record(vec![
            ("vendor".to_string(), Value::String("vendor-1".to_string())),
            ("amount".to_string(), Value::Long(1500)),
        ])
    );
    app.stop().await;
}
