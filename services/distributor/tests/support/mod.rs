//! Helpers for the distributor's tests on the real stack: settings, a running
//! distributor, carts, the outbox and dedupe rows in SQL, producing events
//! in order; the rest comes from `mamochi_testkit`.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use mamochi_common::schema::carts;
use mamochi_common::Settings;
use mamochi_distributor::Distributor;
use mamochi_events::codec::EventCodec;
use mamochi_events::topics::{self, Topic};
use mamochi_events::AvroSchemaSource;
use mamochi_testkit::members::{insert_cart, Member};
use mamochi_testkit::service::InProcess;
use mamochi_testkit::{self as kit};
use uuid::Uuid;

pub use mamochi_testkit::http::get_local as get;
pub use mamochi_testkit::records::{produce_in_order, read_to_end};
pub use mamochi_testkit::settings::pool;
pub use mamochi_testkit::wait::eventually;

/// Tests share one database and one set of topics and consumer groups; each
/// takes this lock so exactly one distributor runs at a time and what a test
/// observes is its own instance's doing.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The stack's settings, quiet logs, ops on a port of the kernel's choosing,
/// and consumer groups of this test process only, starting at the current
/// end of their topics (one prefix per process, so the tests of a file
/// share their groups as one long-running service would).
pub fn settings() -> Settings {
    let mut settings = kit::settings::load();
    kit::settings::quiet_logs(&mut settings);
    settings.distributor.ops_listen = "127.0.0.1:0".to_string();
    kit::settings::process_groups(
        &mut settings,
        &[
            (mamochi_distributor::service::SALES_GROUP, topics::SALES.name()),
            (mamochi_distributor::service::STOCK_GROUP, topics::STOCK.name()),
            (mamochi_distributor::service::TRACKING_GROUP, topics::CART_TRACKING.name()),
        ],
    );
    settings
}

/// A distributor running in this process until stopped.
#[derive(Debug)]
pub struct Running {
    pub ops_port: u16,
    running: InProcess,
}

impl Running {
    pub async fn start(settings: &Settings) -> Self {
        let service = Distributor::build(settings).await.expect("distributor builds");
        let ops_port = service.ops_port();
        let running = InProcess::spawn(|token| service.run_until_stopped(token));
        Self { ops_port, running }
    }

    /// Cancels and waits: the service must stop cleanly.
    pub async fn stop(self) {
        self.running.stop().await;
    }
}

/// A member (and its approved registration) with a cart of `stock` servings.
#[derive(Debug, Clone)]
pub struct Vendor {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
}

pub async fn vendor_with_cart(pool: &PgPool, stock: i32) -> Vendor {
    let member = Member::new();
    member.insert(pool).await;
    if stock >= 0 {
        insert_cart(pool, member.id, stock).await;
    }
    Vendor { id: member.id, email: member.email, full_name: member.full_name }
}

/// The cart row: (stock, low_stock_alerted, restocks).
pub async fn cart(pool: &PgPool, vendor_id: Uuid) -> Option<(i32, bool, i32)> {
    let mut conn = pool.get().await.expect("connection");
    carts::table
        .find(vendor_id)
        .select((carts::stock, carts::low_stock_alerted, carts::restocks))
        .first(&mut conn)
        .await
        .optional()
        .expect("cart query")
}

#[derive(QueryableByName)]
struct Pending {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
}

/// Waits until the relay has produced every committed outbox row, so that
/// what a test then reads from Kafka is all the distributor derived: the
/// commit a test sees in PostgreSQL precedes the relay's produce.
pub async fn all_relayed(pool: &PgPool) {
    eventually(Duration::from_secs(90), "the outbox to be relayed", || async {
        let mut conn = pool.get().await.expect("connection");
        let pending = diesel::sql_query("SELECT count(*) AS rows FROM distributor_outbox")
            .get_result::<Pending>(&mut conn)
            .await
            .expect("outbox count");
        (pending.rows == 0).then_some(())
    })
    .await;
}

/// How many of `event_ids` the consumer `consumer` has applied.
pub async fn applied_count(pool: &PgPool, consumer: &str, event_ids: &[Uuid]) -> i64 {
    use mamochi_common::schema::processed_events;
    let mut conn = pool.get().await.expect("connection");
    processed_events::table
        .filter(processed_events::consumer.eq(consumer))
        .filter(processed_events::event_id.eq_any(event_ids))
        .count()
        .get_result(&mut conn)
        .await
        .expect("dedupe count")
}
