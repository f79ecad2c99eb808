//! Every event type survives the trip through the real registry and broker:
//! encoded in Confluent's wire format (registering the raw .avsc), produced,
//! consumed and decoded into an equal Rust value.

use mamochi_testkit as kit;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use mamochi_common::kafka;
use mamochi_events::codec::{split_header, EventCodec};
use mamochi_events::topics::{self, Topic};
use mamochi_events::*;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use rdkafka::Message;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn at(ms: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().expect("valid instant")
}

fn id() -> apache_avro::Uuid {
    uuid::Uuid::new_v4()
}

async fn round_trip<K, V>(codec: &EventCodec, topic: &Topic<K, V>, key: K, value: V)
where
    K: AvroSchemaSource + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    V: AvroSchemaSource + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let settings = kit::settings::load();
    let admin = kafka::admin(&settings.kafka).expect("admin");
    kafka::ensure_topics(&admin, &[topic.info.spec()]).await.expect("topic");
    let (key_bytes, value_bytes) = codec.encode(topic, &key, &value).await.expect("encodes");
    let (value_id, _) = split_header(&value_bytes).expect("wire format");
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let marker = uuid::Uuid::new_v4().to_string();
    let headers = rdkafka::message::OwnedHeaders::new()
        .insert(rdkafka::message::Header { key: "test.marker", value: Some(marker.as_str()) });
    producer
        .send(
            FutureRecord::to(topic.name()).key(&key_bytes).payload(&value_bytes).headers(headers),
            Timeout::After(Duration::from_secs(30)),
        )
        .await
        .map_err(|(error, _)| error)
        .expect("acknowledged");

    let records = kit::records::read_records(&settings, topic.name(), 1, Duration::from_secs(30), |message| {
        use rdkafka::message::Headers;
        message.headers().is_some_and(|headers| {
            headers.iter().any(|header| header.key == "test.marker" && header.value == Some(marker.as_bytes()))
        })
    })
    .await;
    assert_eq!(records.len(), 1, "{} record came back", topic.name());
    let decoded_key: K = codec.decode(records[0].key()).await.expect("key decodes");
    let decoded_value: V = codec.decode(records[0].payload()).await.expect("value decodes");
    assert_eq!(decoded_key, key);
    assert_eq!(decoded_value, value);

    let registered: serde_json::Value = reqwest::get(format!("{}/schemas/ids/{value_id}", settings.registry.url))
        .await
        .expect("registry answers")
        .json()
        .await
        .expect("json");
    assert_eq!(registered["schema"].as_str(), Some(V::SCHEMA.text), "the raw .avsc text was registered");
}

#[tokio::test]
async fn every_event_type_round_trips_through_registry_and_broker() {
    let settings = kit::settings::load();
    let codec = EventCodec::new(&settings.registry.url);
    let vendor = id();
    let registration = id();
    let now = at(1_763_800_000_000);

    round_trip(
        &codec,
        &topics::REGISTRATIONS,
        RegistrationKey { registration_id: registration },
        RegistrationSubmitted {
            registration_id: registration,
            submitted_at: now,
            full_name: "Rosa Pérez Soto".into(),
            rut: "12345678-5".into(),
            email: "rosa@example.cl".into(),
            phone: "+56912345678".into(),
            comuna: "Ñuñoa".into(),
            cart_plate: "BCDF12".into(),
            paid: true,
            payment_reference: Some("TX-991".into()),
            tracking_token_sha256: "ab".repeat(32),
        },
    )
    .await;
    round_trip(
        &codec,
        &topics::REGISTRATION_DECISIONS,
        RegistrationKey { registration_id: registration },
        RegistrationDecided {
            registration_id: registration,
            decided_at: now,
            outcome: RegistrationOutcome::Approved,
            reason: None,
            decided_by: "rules".into(),
            member_id: Some(vendor),
        },
    )
    .await;
    round_trip(
        &codec,
        &topics::REGISTRATION_REVIEWS,
        RegistrationKey { registration_id: registration },
        RegistrationReviewed {
            review_id: id(),
            registration_id: registration,
            decision: ReviewDecision::Reject,
            reason: Some("RUT already registered".into()),
            reviewer: "staff".into(),
            reviewed_at: now,
        },
    )
    .await;
    round_trip(
        &codec,
        &topics::CREDENTIALS,
        VendorKey { vendor_id: vendor },
        CredentialsIssued {
            member_id: vendor,
            registration_id: registration,
            key_id: "mamochi_ab12".into(),
            issued_at: now,
        },
    )
    .await;
    round_trip(
        &codec,
        &topics::SALES,
        VendorKey { vendor_id: vendor },
        SaleRecorded {
            sale_id: id(),
            vendor_id: vendor,
            quantity: 2,
            unit_price_clp: 1_500,
            total_clp: 3_000,
            payment_method: PaymentMethod::Debit,
            occurred_at: now,
            recorded_at: now,
            location: None,
        },
    )
    .await;
    // A sale that says where it happened, with and without the accuracy.
    for accuracy_m in [Some(12.5), None] {
        round_trip(
            &codec,
            &topics::SALES,
            VendorKey { vendor_id: vendor },
            SaleRecorded {
                sale_id: id(),
                vendor_id: vendor,
                quantity: 1,
                unit_price_clp: 1_200,
                total_clp: 1_200,
                payment_method: PaymentMethod::Cash,
                occurred_at: now,
                recorded_at: now,
                location: Some(SaleLocation { latitude: -33.4372, longitude: -70.6506, accuracy_m }),
            },
        )
        .await;
    }
    round_trip(
        &codec,
        &topics::CART_STOCK,
        VendorKey { vendor_id: vendor },
        CartStockLevel { vendor_id: vendor, stock: 7, restocks: 2, updated_at: now },
    )
    .await;
    round_trip(
        &codec,
        &topics::CART_TRACKING,
        VendorKey { vendor_id: vendor },
        CartTrackingEvent {
            event_id: id(),
            vendor_id: vendor,
            kind: CartTrackingEventKind::Location,
            occurred_at: now,
            latitude: Some(-33.4569),
            longitude: Some(-70.5983),
            accuracy_m: Some(8.0),
            note: None,
            reported_by: "vendor".into(),
        },
    )
    .await;
    round_trip(
        &codec,
        &topics::CART_TRACKING,
        VendorKey { vendor_id: vendor },
        CartTrackingEvent {
            event_id: id(),
            vendor_id: vendor,
            kind: CartTrackingEventKind::Missing,
            occurred_at: now,
            latitude: None,
            longitude: None,
            accuracy_m: None,
            note: Some("no está en la feria de Ñuñoa".into()),
            reported_by: "guardia".into(),
        },
    )
    .await;
    let incident = id();
    round_trip(
        &codec,
        &topics::CART_ALARMS,
        VendorKey { vendor_id: vendor },
        CartAlarm {
            event_id: id(),
            incident_id: incident,
            vendor_id: vendor,
            cause: CartAlarmCause::OutOfArea,
            state: CartAlarmState::Raised,
            evidence_at: now,
            decided_at: at(1_763_800_000_250),
            latitude: Some(-33.0472),
            longitude: Some(-71.6127),
            distance_m: Some(98_765.4),
            detail: "el carro está a 98,8 km del centro de su comuna".into(),
        },
    )
    .await;
    round_trip(
        &codec,
        &topics::CART_ALARMS,
        VendorKey { vendor_id: vendor },
        CartAlarm {
            event_id: id(),
            incident_id: incident,
            vendor_id: vendor,
            cause: CartAlarmCause::OutOfArea,
            state: CartAlarmState::Cleared,
            evidence_at: now,
            decided_at: now,
            latitude: None,
            longitude: None,
            distance_m: None,
            detail: "el carro volvió a su comuna".into(),
        },
    )
    .await;
    round_trip(
        &codec,
        &topics::STOCK,
        VendorKey { vendor_id: vendor },
        StockEvent {
            event_id: id(),
            vendor_id: vendor,
            kind: StockEventKind::Replenished,
            quantity: 10,
            stock_after: 10,
            reason: Some("restock".into()),
            occurred_at: now,
        },
    )
    .await;
    round_trip(
        &codec,
        &topics::STATEMENTS,
        VendorKey { vendor_id: vendor },
        WeeklyStatementIssued {
            statement_id: id(),
            vendor_id: vendor,
            iso_week: "2026-W47".into(),
            week_start: at(1_763_348_400_000),
            week_end: at(1_763_953_200_000),
            sales_count: 42,
            units: 50,
            earnings_clp: 75_000,
            average_ticket_clp: 1_786,
            issued_at: now,
        },
    )
    .await;
    let message = id();
    round_trip(
        &codec,
        &topics::EMAIL_REQUESTS,
        MessageKey { message_id: message },
        EmailRequested {
            message_id: message,
            to: "rosa@example.cl".into(),
            subject: "Su resumen semanal".into(),
            body_text: "Ventas: 42".into(),
            category: "statement".into(),
            requested_at: now,
            sealed_secret: Some(vec![1, 2, 3]),
        },
    )
    .await;
}
