//! The distributor on the real stack: sales arrive on `mamochi.sales`, stock
//! events on `mamochi.stock`; what it derives is read back from Kafka and the
//! carts from PostgreSQL.

mod support;

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::kafka;
use mamochi_common::schema::processed_events;
use mamochi_distributor::derived::derived_id;
use mamochi_events::codec::EventCodec;
use mamochi_events::publish::publish;
use mamochi_events::topics::{EMAIL_REQUESTS, SALES, STOCK};
use mamochi_events::{EmailRequested, PaymentMethod, SaleRecorded, StockEvent, StockEventKind, VendorKey};
use support::{cart, eventually, read_to_end, Running, SERIAL};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(90);

fn sale(vendor_id: Uuid, quantity: i32) -> SaleRecorded {
    let now = Utc::now();
    SaleRecorded {
        sale_id: Uuid::new_v4(),
        vendor_id,
        quantity,
        unit_price_clp: 1_500,
        total_clp: i64::from(quantity) * 1_500,
        payment_method: PaymentMethod::Cash,
        occurred_at: now,
        recorded_at: now,
        location: None,
    }
}

struct Harness {
    settings: mamochi_common::Settings,
    pool: mamochi_common::db::PgPool,
    codec: EventCodec,
    producer: rdkafka::producer::FutureProducer,
}

impl Harness {
    fn new() -> Self {
        let settings = support::settings();
        let pool = support::pool(&settings);
        let codec = EventCodec::new(&settings.registry.url);
        let producer = kafka::producer(&settings.kafka, "test").expect("producer");
        Self { settings, pool, codec, producer }
    }

    async fn sell(&self, sale: &SaleRecorded) {
        let key = VendorKey { vendor_id: sale.vendor_id };
        publish(&self.producer, &self.codec, &SALES, &key, sale, None).await.expect("sale acknowledged");
    }

    async fn stock_event(&self, event: &StockEvent) {
        let key = VendorKey { vendor_id: event.vendor_id };
        publish(&self.producer, &self.codec, &STOCK, &key, event, None).await.expect("stock event acknowledged");
    }

    /// The vendor's stock events, once every derived record is produced.
    async fn stock_events(&self, vendor_id: Uuid) -> Vec<StockEvent> {
        support::all_relayed(&self.pool).await;
        read_to_end(&self.settings, &self.codec, &STOCK)
            .await
            .into_iter()
            .filter(|e| e.vendor_id == vendor_id)
            .collect()
    }

    /// The email requests to `to`, once every derived record is produced.
    async fn email_requests(&self, to: &str) -> Vec<EmailRequested> {
        support::all_relayed(&self.pool).await;
        read_to_end(&self.settings, &self.codec, &EMAIL_REQUESTS).await.into_iter().filter(|e| e.to == to).collect()
    }

    async fn applied(&self, consumer: &str, event_id: Uuid) -> bool {
        let mut conn = self.pool.get().await.expect("connection");
        diesel::select(diesel::dsl::exists(processed_events::table.find((consumer, event_id))))
            .get_result(&mut conn)
            .await
            .expect("dedupe query")
    }
}

fn of_kind(events: &[StockEvent], kind: StockEventKind) -> Vec<&StockEvent> {
    events.iter().filter(|event| event.kind == kind).collect()
}

#[tokio::test]
async fn ten_sales_deplete_the_cart_once_and_it_is_restocked_once() {
    let _serial = SERIAL.lock().await;
    // Arrange: a cart of 10, the guild's scenario (restock 10, alert below 3).
    let h = Harness::new();
    assert_eq!((h.settings.distributor.restock_quantity, h.settings.distributor.low_stock_threshold), (10, 3));
    let vendor = support::vendor_with_cart(&h.pool, 10).await;
    let service = Running::start(&h.settings).await;

    // Act: ten sales of one serving.
    let sales: Vec<SaleRecorded> = (0..10).map(|_| sale(vendor.id, 1)).collect();
    for sale in &sales {
        h.sell(sale).await;
    }

    // Assert: the cart ran out once, was restocked once, back to 10.
    let (stock, alerted, restocks) = eventually(WAIT, "the restock to commit", || async {
        cart(&h.pool, vendor.id).await.filter(|(_, _, restocks)| *restocks >= 1)
    })
    .await;
    assert_eq!((stock, alerted, restocks), (10, false, 1), "stock, alert re-armed, one restock");
    let events = h.stock_events(vendor.id).await;
    let depleted = of_kind(&events, StockEventKind::Depleted);
    assert_eq!(depleted.len(), 1, "exactly one depletion: {events:?}");
    assert_eq!(depleted[0].stock_after, 0);
    assert_eq!(depleted[0].reason.as_deref(), Some("sale"));
    assert_eq!(depleted[0].event_id, derived_id("depleted", sales[9].sale_id), "derived from the tenth sale");
    let replenished = of_kind(&events, StockEventKind::Replenished);
    assert_eq!(replenished.len(), 1, "exactly one restock: {events:?}");
    assert_eq!((replenished[0].quantity, replenished[0].stock_after), (10, 10));
    let emails = h.email_requests(&vendor.email).await;
    let restock_emails: Vec<_> = emails.iter().filter(|email| email.category == "restock").collect();
    assert_eq!(restock_emails.len(), 1, "one restock email: {emails:?}");
    assert_eq!(restock_emails[0].message_id, derived_id("restock", depleted[0].event_id));
    assert!(restock_emails[0].body_text.contains("con 10 porciones"), "{}", restock_emails[0].body_text);
    assert!(restock_emails[0].body_text.contains("Stock actual: 10 porciones"), "{}", restock_emails[0].body_text);
    service.stop().await;
}

#[tokio::test]
async fn a_low_stock_alert_fires_once_when_crossing_the_threshold() {
    let _serial = SERIAL.lock().await;
    // Arrange: a cart of 5 with the alert below 3.
    let h = Harness::new();
    let vendor = support::vendor_with_cart(&h.pool, 5).await;
    let service = Running::start(&h.settings).await;

    // Act: 5 -> 4 -> 3 -> 2 (crosses below 3) -> 1.
    let sales: Vec<SaleRecorded> = (0..4).map(|_| sale(vendor.id, 1)).collect();
    for sale in &sales {
        h.sell(sale).await;
    }

    // Assert: one LOW_STOCK at 2, one email, the flag set, no depletion.
    let last = sales[3].sale_id;
    eventually(WAIT, "the last sale to apply", || async { h.applied("distributor", last).await.then_some(()) }).await;
    assert_eq!(cart(&h.pool, vendor.id).await, Some((1, true, 0)));
    let events = h.stock_events(vendor.id).await;
    let alerts = of_kind(&events, StockEventKind::LowStock);
    assert_eq!(alerts.len(), 1, "one alert: {events:?}");
    assert_eq!(alerts[0].stock_after, 2);
    assert_eq!(alerts[0].event_id, derived_id("low_stock", sales[2].sale_id), "raised by the sale that crossed");
    assert!(of_kind(&events, StockEventKind::Depleted).is_empty());
    let emails = h.email_requests(&vendor.email).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(emails[0].category, "low_stock");
    assert!(emails[0].body_text.contains("le quedan 2 porciones"), "{}", emails[0].body_text);
    service.stop().await;
}

#[tokio::test]
async fn a_redelivered_sale_is_applied_once() {
    let _serial = SERIAL.lock().await;
    // Arrange: a cart of 10; one sale of 3 delivered twice, then a marker sale.
    let h = Harness::new();
    let vendor = support::vendor_with_cart(&h.pool, 10).await;
    let twice = sale(vendor.id, 3);
    let marker = sale(vendor.id, 1);
    let service = Running::start(&h.settings).await;

    // Act: the same record twice (a producer retry or a replay), then the marker.
    h.sell(&twice).await;
    h.sell(&twice).await;
    h.sell(&marker).await;

    // Assert: the marker applied after both copies (same partition, in order),
    // and the stock counts the duplicated sale once: 10 - 3 - 1.
    eventually(WAIT, "the marker sale to apply", || async {
        h.applied("distributor", marker.sale_id).await.then_some(())
    })
    .await;
    assert_eq!(cart(&h.pool, vendor.id).await, Some((6, false, 0)));
    let (status, metrics) = support::get(service.ops_port, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("mamochi_distributor_duplicates_skipped_total{topic=\"sales\"}"), "{metrics}");
    service.stop().await;
}

#[tokio::test]
async fn selling_past_zero_floors_at_zero_and_the_cart_is_restocked() {
    let _serial = SERIAL.lock().await;
    // Arrange: a cart of 2.
    let h = Harness::new();
    let vendor = support::vendor_with_cart(&h.pool, 2).await;
    let service = Running::start(&h.settings).await;

    // Act: a sale of 5, three more than the cart holds.
    let big = sale(vendor.id, 5);
    h.sell(&big).await;

    // Assert: the sale is accepted, the depletion reports 0 (not -3), the
    // shortfall is counted, and the restock refills the empty cart to 10.
    let (stock, _, restocks) = eventually(WAIT, "the restock to commit", || async {
        cart(&h.pool, vendor.id).await.filter(|(_, _, restocks)| *restocks >= 1)
    })
    .await;
    assert!(h.applied("distributor", big.sale_id).await, "the sale was applied, not parked");
    assert_eq!((stock, restocks), (10, 1));
    let events = h.stock_events(vendor.id).await;
    let depleted = of_kind(&events, StockEventKind::Depleted);
    assert_eq!(depleted.len(), 1, "{events:?}");
    assert_eq!(depleted[0].stock_after, 0);
    let (_, metrics) = support::get(service.ops_port, "/metrics").await;
    let oversold: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("mamochi_distributor_oversold_servings_total "))
        .and_then(|value| value.trim().parse().ok())
        .expect("oversold metric");
    assert!(oversold >= 3, "{metrics}");
    service.stop().await;
}

#[tokio::test]
async fn a_vendor_reported_depletion_is_restocked() {
    let _serial = SERIAL.lock().await;
    // Arrange: the vendor says the cart is empty although the count says 4.
    let h = Harness::new();
    let vendor = support::vendor_with_cart(&h.pool, 4).await;
    let service = Running::start(&h.settings).await;
    let (health, _) = support::get(service.ops_port, "/healthz").await;
    assert_eq!(health, 200);
    let report = StockEvent {
        event_id: Uuid::new_v4(),
        vendor_id: vendor.id,
        kind: StockEventKind::Depleted,
        quantity: 0,
        stock_after: 0,
        reason: Some("reported by vendor".to_string()),
        occurred_at: Utc::now(),
    };

    // Act
    h.stock_event(&report).await;

    // Assert: refilled to the restock quantity, announced once, vendor emailed once.
    let (stock, alerted, restocks) = eventually(WAIT, "the restock to commit", || async {
        cart(&h.pool, vendor.id).await.filter(|(_, _, restocks)| *restocks >= 1)
    })
    .await;
    assert_eq!((stock, alerted, restocks), (10, false, 1));
    let events = h.stock_events(vendor.id).await;
    let replenished = of_kind(&events, StockEventKind::Replenished);
    assert_eq!(replenished.len(), 1, "{events:?}");
    assert_eq!(replenished[0].event_id, derived_id("replenished", report.event_id));
    assert_eq!((replenished[0].quantity, replenished[0].stock_after), (10, 10));
    let emails = h.email_requests(&vendor.email).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(emails[0].message_id, derived_id("restock", report.event_id));
    assert!(emails[0].body_text.contains(&format!("Hola {}", vendor.full_name)));
    service.stop().await;
}

#[tokio::test]
async fn a_restock_request_adds_the_requested_quantity_and_a_member_without_cart_gets_one() {
    let _serial = SERIAL.lock().await;
    // Arrange: a member whose cart row is missing (initial stock 10 applies).
    let h = Harness::new();
    let vendor = support::vendor_with_cart(&h.pool, -1).await;
    assert_eq!(cart(&h.pool, vendor.id).await, None);
    let service = Running::start(&h.settings).await;
    let request = StockEvent {
        event_id: Uuid::new_v4(),
        vendor_id: vendor.id,
        kind: StockEventKind::RestockRequested,
        quantity: 7,
        stock_after: 0,
        reason: Some("requested by vendor".to_string()),
        occurred_at: Utc::now(),
    };

    // Act: the same request twice.
    h.stock_event(&request).await;
    h.stock_event(&request).await;

    // Assert: cart created with 10, plus 7, once.
    let state = eventually(WAIT, "the restock to commit", || async {
        cart(&h.pool, vendor.id).await.filter(|(_, _, restocks)| *restocks >= 1)
    })
    .await;
    let replenished: Vec<_> =
        h.stock_events(vendor.id).await.into_iter().filter(|event| event.kind == StockEventKind::Replenished).collect();
    assert_eq!(state, (17, false, 1));
    assert_eq!(replenished.len(), 1, "{replenished:?}");
    assert_eq!((replenished[0].quantity, replenished[0].stock_after), (7, 17));
    service.stop().await;
}
