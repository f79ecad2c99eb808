//! The outbox relay on the real stack: rows a crash left committed but
//! unproduced are produced when the distributor starts, in `seq` order, and
//! deleted once Kafka acknowledged them.

mod support;

use std::time::Duration;

use chrono::Utc;
use diesel::sql_types::{Array, BigInt, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use mamochi_distributor::outbox::{self, OutboxRecord};
use mamochi_events::codec::EventCodec;
use mamochi_events::topics::{CART_STOCK, STOCK};
use mamochi_events::{CartStockLevel, StockEvent, StockEventKind};
use support::{eventually, read_to_end, Running, SERIAL};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(90);

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

async fn rows_of(pool: &mamochi_common::db::PgPool, vendor_id: Uuid) -> i64 {
    let mut conn = pool.get().await.expect("connection");
    diesel::sql_query("SELECT count(*) AS count FROM distributor_outbox WHERE record->>'vendor_id' = ANY($1)")
        .bind::<Array<Text>, _>(vec![vendor_id.to_string()])
        .get_result::<Count>(&mut conn)
        .await
        .expect("outbox count")
        .count
}

#[tokio::test]
async fn rows_left_by_a_crash_are_produced_in_order_at_start_up() {
    let _serial = SERIAL.lock().await;
    // Arrange: what a crash right after a commit leaves behind: a LOW_STOCK
    // event (which the distributor's own stock consumer ignores) and two
    // levels of one cart, committed but never produced.
    let settings = support::settings();
    let pool = support::pool(&settings);
    let codec = EventCodec::new(&settings.registry.url);
    let vendor_id = Uuid::new_v4();
    let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now");
    let alert = StockEvent {
        event_id: Uuid::new_v4(),
        vendor_id,
        kind: StockEventKind::LowStock,
        quantity: 0,
        stock_after: 2,
        reason: Some("sale".to_string()),
        occurred_at: now,
    };
    let level = |stock| OutboxRecord::Level(CartStockLevel { vendor_id, stock, restocks: 0, updated_at: now });
    let records = [level(2), OutboxRecord::Stock(alert.clone()), level(1)];
    {
        let mut conn = pool.get().await.expect("connection");
        outbox::insert(&mut conn, &records).await.expect("outbox rows");
    }
    assert_eq!(rows_of(&pool, vendor_id).await, 3);

    // Act: the distributor starts.
    let service = Running::start(&settings).await;

    // Assert: the rows are produced, then deleted; levels in seq order, so
    // the newest is last.
    eventually(WAIT, "the outbox rows to be relayed", || async {
        (rows_of(&pool, vendor_id).await == 0).then_some(())
    })
    .await;
    let events: Vec<StockEvent> =
        read_to_end(&settings, &codec, &STOCK).await.into_iter().filter(|event| event.vendor_id == vendor_id).collect();
    assert_eq!(events, vec![alert], "the LOW_STOCK event, once");
    let levels: Vec<i32> = read_to_end(&settings, &codec, &CART_STOCK)
        .await
        .into_iter()
        .filter(|level| level.vendor_id == vendor_id)
        .map(|level| level.stock)
        .collect();
    assert_eq!(levels, vec![2, 1], "both levels, oldest first");
    service.stop().await;
}
