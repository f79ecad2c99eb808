//! The distributor process killed with SIGKILL while it drains a backlog of
//! sales, then started again, ends with exactly the stock, depletions,
//! low-stock alerts and restock emails the sales imply: nothing lost,
//! nothing applied twice in effect. Runs the real binary (`mamochi run
//! distributor`) so the kill is a real process death, between any two steps
//! of a batch: before its commit, between the commit and the outbox relay,
//! or between Kafka's acknowledgement and the outbox delete.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db::{self, PgPool};
use mamochi_common::kafka;
use mamochi_common::schema::{carts, processed_events};
use mamochi_common::Settings;
use mamochi_distributor::derived::derived_id;
use mamochi_distributor::rules::{self, Cart};
use mamochi_events::codec::EventCodec;
use mamochi_events::topics::{CART_STOCK, EMAIL_REQUESTS, SALES, STOCK};
use mamochi_events::{PaymentMethod, SaleRecorded, StockEventKind, VendorKey};
use mamochi_testkit::members::{insert_cart, Member};
use mamochi_testkit::records::{produce_in_order, read_to_end};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

const VENDORS: usize = 20;
const SALES_PER_VENDOR: usize = 500;
const MAX_BATCH: usize = 500;
const WAIT: Duration = Duration::from_secs(240);

fn start_distributor(settings: &Settings) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mamochi"))
        .args(["run", "distributor"])
        .env("MAMOCHI__KAFKA__GROUP_PREFIX", &settings.kafka.group_prefix)
        .env("MAMOCHI__DISTRIBUTOR__OPS_LISTEN", "127.0.0.1:0")
        // Many transactions in the backlog, so the kill lands among them.
        .env("MAMOCHI__DISTRIBUTOR__MAX_BATCH", MAX_BATCH.to_string())
        .env("MAMOCHI__LOG__FILTER", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("mamochi run distributor starts")
}

/// A member (and its approved registration) with a cart of `stock` servings.
async fn member_with_cart(pool: &PgPool, stock: i32) -> (Uuid, String) {
    let member = Member::new();
    member.insert(pool).await;
    insert_cart(pool, member.id, stock).await;
    (member.id, member.email)
}

async fn applied(pool: &PgPool, sale_ids: &[Uuid]) -> i64 {
    let mut conn = pool.get().await.expect("connection");
    processed_events::table
        .filter(processed_events::consumer.eq("distributor"))
        .filter(processed_events::event_id.eq_any(sale_ids))
        .count()
        .get_result(&mut conn)
        .await
        .expect("dedupe count")
}

async fn carts_of(pool: &PgPool, vendors: &[Uuid]) -> HashMap<Uuid, (i32, bool, i32)> {
    let mut conn = pool.get().await.expect("connection");
    carts::table
        .filter(carts::vendor_id.eq_any(vendors))
        .select((carts::vendor_id, carts::stock, carts::low_stock_alerted, carts::restocks))
        .load::<(Uuid, i32, bool, i32)>(&mut conn)
        .await
        .expect("carts")
        .into_iter()
        .map(|(vendor, stock, alerted, restocks)| (vendor, (stock, alerted, restocks)))
        .collect()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// Outbox rows still to be produced that concern these vendors.
async fn outbox_rows(pool: &PgPool, vendors: &[Uuid], emails: &[String]) -> i64 {
    let mut conn = pool.get().await.expect("connection");
    let vendors: Vec<String> = vendors.iter().map(Uuid::to_string).collect();
    diesel::sql_query(
        "SELECT count(*) AS count FROM distributor_outbox \
         WHERE record->>'vendor_id' = ANY($1) OR record->>'to' = ANY($2)",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(vendors)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(emails)
    .get_result::<Count>(&mut conn)
    .await
    .expect("outbox count")
    .count
}

/// Whether `group` has committed offsets up to the current end of every
/// partition of `topic`: everything in it, duplicates included, was handled.
fn caught_up(settings: &Settings, group: &str, topic: &str, partitions: i32) -> bool {
    let consumer = kafka::consumer(&settings.kafka, group, "test").expect("consumer");
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let Ok(committed) = consumer.committed_offsets(list, Duration::from_secs(10)) else {
        return false;
    };
    (0..partitions).all(|partition| {
        let Ok((_, high)) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)) else {
            return false;
        };
        match committed.find_partition(topic, partition).map(|element| element.offset()) {
            Some(Offset::Offset(offset)) => offset >= high,
            _ => high == 0,
        }
    })
}

/// What the rules give for one vendor's sales applied one at a time.
struct Expected {
    cart: Cart,
    low_stock: BTreeSet<Uuid>,
    depleted: BTreeSet<Uuid>,
}

fn oracle(initial: i32, sales: &[&SaleRecorded], threshold: i32) -> Expected {
    let mut expected = Expected {
        cart: Cart { stock: initial, low_stock_alerted: false },
        low_stock: BTreeSet::new(),
        depleted: BTreeSet::new(),
    };
    for (index, sale) in sales.iter().enumerate() {
        let effect = rules::apply_sale(expected.cart, sale.quantity, threshold).expect("valid sale");
        if effect.low_stock_alert {
            expected.low_stock.insert(sale.sale_id);
        }
        if effect.depleted {
            // The restock arrives asynchronously; depleting only on the last
            // sale keeps the outcome independent of when it lands.
            assert_eq!(index, sales.len() - 1, "the scenario depletes only on a vendor's last sale");
            expected.depleted.insert(sale.sale_id);
        }
        expected.cart = Cart {
            stock: effect.stock_after,
            low_stock_alerted: expected.cart.low_stock_alerted || effect.low_stock_alert,
        };
    }
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_draining_sales_then_restart_gives_exact_stock_and_derived_records() {
    // Arrange: 20 members; even ones hold exactly their sales (each depletes
    // on its last sale and is restocked), odd ones 1 to 5 servings more (some
    // cross the low-stock threshold). 10,000 sales of one serving in Kafka,
    // a vendor's sales one after the other so depletions and alerts happen
    // all along the stream.
    let settings = support::isolated_settings();
    let codec = EventCodec::new(&settings.registry.url);
    let pool = db::pool(&settings.database).expect("pool");
    let threshold = settings.distributor.low_stock_threshold;
    let restock_quantity = settings.distributor.restock_quantity;
    let mut vendors = Vec::new();
    for index in 0..VENDORS {
        let margin = if index % 2 == 0 { 0 } else { 1 + (index / 2 % 5) as i32 };
        let initial = SALES_PER_VENDOR as i32 + margin;
        let (id, email) = member_with_cart(&pool, initial).await;
        vendors.push((id, email, initial));
    }
    let now = chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis()).expect("now");
    let sales: Vec<SaleRecorded> = vendors
        .iter()
        .flat_map(|(vendor_id, _, _)| {
            (0..SALES_PER_VENDOR).map(move |_| SaleRecorded {
                sale_id: Uuid::new_v4(),
                vendor_id: *vendor_id,
                quantity: 1,
                unit_price_clp: 1_000,
                total_clp: 1_000,
                payment_method: PaymentMethod::Cash,
                occurred_at: now,
                recorded_at: now,
                location: None,
            })
        })
        .collect();
    let expected: HashMap<Uuid, Expected> = vendors
        .iter()
        .map(|(vendor_id, _, initial)| {
            let own: Vec<&SaleRecorded> = sales.iter().filter(|sale| sale.vendor_id == *vendor_id).collect();
            (*vendor_id, oracle(*initial, &own, threshold))
        })
        .collect();
    let sale_ids: Vec<Uuid> = sales.iter().map(|sale| sale.sale_id).collect();
    let vendor_ids: Vec<Uuid> = vendors.iter().map(|(id, _, _)| *id).collect();
    let emails: Vec<String> = vendors.iter().map(|(_, email, _)| email.clone()).collect();
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    produce_in_order(&producer, &codec, &SALES, &sales, |sale| VendorKey { vendor_id: sale.vendor_id }).await;

    // Act: start, SIGKILL once part of the backlog is applied, restart.
    let mut first = start_distributor(&settings);
    let deadline = Instant::now() + WAIT;
    while applied(&pool, &sale_ids).await < 2_000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill(Pid::from_raw(first.id() as i32), Signal::SIGKILL).expect("SIGKILL");
    first.wait().expect("reaped");
    let at_kill = applied(&pool, &sale_ids).await;
    let outbox_at_kill = outbox_rows(&pool, &vendor_ids, &emails).await;
    println!(
        "killed the distributor with {at_kill} of {} sales applied, {outbox_at_kill} outbox rows pending",
        sales.len()
    );
    let restarted = Instant::now();
    let mut second = start_distributor(&settings);
    let deadline = Instant::now() + WAIT;
    while applied(&pool, &sale_ids).await < sale_ids.len() as i64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rest = sale_ids.len() as i64 - at_kill;
    println!(
        "restarted distributor applied the remaining {rest} sales in {:.2}s ({:.0} sales/s, debug build, including \
         start-up and the group's wait for the killed member's session to expire)",
        restarted.elapsed().as_secs_f64(),
        rest as f64 / restarted.elapsed().as_secs_f64()
    );
    // Done means: every sale and every stock event (duplicates included)
    // consumed and committed, every depleted cart restocked, and no outbox
    // row of these vendors left to produce.
    let sales_group = settings.kafka.group(mamochi_distributor::service::SALES_GROUP);
    let stock_group = settings.kafka.group(mamochi_distributor::service::STOCK_GROUP);
    let depleting: Vec<Uuid> =
        vendor_ids.iter().copied().filter(|vendor| !expected[vendor].depleted.is_empty()).collect();
    loop {
        let restocked = carts_of(&pool, &depleting).await.values().all(|(_, _, restocks)| *restocks >= 1);
        let settled = restocked
            && outbox_rows(&pool, &vendor_ids, &emails).await == 0
            && caught_up(&settings, &sales_group, SALES.name(), SALES.info.partitions)
            && caught_up(&settings, &stock_group, STOCK.name(), STOCK.info.partitions);
        if settled {
            break;
        }
        assert!(Instant::now() < deadline, "timed out waiting for the distributor to settle");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let final_carts = carts_of(&pool, &vendor_ids).await;
    let stock_events: Vec<_> = read_to_end(&settings, &codec, &STOCK)
        .await
        .into_iter()
        .filter(|e| vendor_ids.contains(&e.vendor_id))
        .collect();
    let email_requests: Vec<_> =
        read_to_end(&settings, &codec, &EMAIL_REQUESTS).await.into_iter().filter(|e| emails.contains(&e.to)).collect();
    let levels: Vec<_> = read_to_end(&settings, &codec, &CART_STOCK)
        .await
        .into_iter()
        .filter(|l| vendor_ids.contains(&l.vendor_id))
        .collect();
    kill(Pid::from_raw(second.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let status = second.wait().expect("reaped");

    // Assert
    assert!(at_kill < sales.len() as i64, "the kill happened mid-backlog ({at_kill} applied)");
    assert_eq!(applied(&pool, &sale_ids).await, sale_ids.len() as i64, "every sale applied");
    assert!(status.success(), "the restarted distributor stops cleanly: {status}");
    let distinct = |kind: StockEventKind, vendor: Uuid| -> BTreeSet<Uuid> {
        stock_events.iter().filter(|e| e.kind == kind && e.vendor_id == vendor).map(|e| e.event_id).collect()
    };
    let derive = |label: &str, sources: &BTreeSet<Uuid>| -> BTreeSet<Uuid> {
        sources.iter().map(|source| derived_id(label, *source)).collect()
    };
    let mut depleted_total = 0;
    let mut restock_emails_total = 0;
    for (vendor, email, _) in &vendors {
        let want = &expected[vendor];
        let (stock, alerted, restocks) = final_carts[vendor];
        if want.depleted.is_empty() {
            assert_eq!(
                (stock, alerted, restocks),
                (want.cart.stock, want.cart.low_stock_alerted, 0),
                "vendor {vendor}"
            );
        } else {
            assert_eq!((stock, alerted, restocks), (restock_quantity, false, 1), "vendor {vendor}: restocked once");
        }
        let depleted_events = derive("depleted", &want.depleted);
        assert_eq!(distinct(StockEventKind::Depleted, *vendor), depleted_events, "vendor {vendor}: DEPLETED");
        assert_eq!(
            distinct(StockEventKind::LowStock, *vendor),
            derive("low_stock", &want.low_stock),
            "vendor {vendor}: LOW_STOCK"
        );
        assert_eq!(distinct(StockEventKind::Replenished, *vendor), derive("replenished", &depleted_events));
        let restock_emails: BTreeSet<Uuid> = email_requests
            .iter()
            .filter(|request| request.to == *email && request.category == "restock")
            .map(|request| request.message_id)
            .collect();
        assert_eq!(restock_emails, derive("restock", &depleted_events), "vendor {vendor}: restock emails");
        let low_stock_emails: BTreeSet<Uuid> = email_requests
            .iter()
            .filter(|request| request.to == *email && request.category == "low_stock")
            .map(|request| request.message_id)
            .collect();
        assert_eq!(low_stock_emails, derive("low_stock", &want.low_stock), "vendor {vendor}: low-stock emails");
        let last = levels.iter().rev().find(|level| level.vendor_id == *vendor).expect("a published level");
        assert_eq!(
            (last.stock, last.restocks),
            (stock, restocks),
            "vendor {vendor}: the last published level is the cart"
        );
        depleted_total += depleted_events.len();
        restock_emails_total += restock_emails.len();
    }
    let depleted_records = stock_events.iter().filter(|e| e.kind == StockEventKind::Depleted).count();
    println!(
        "{depleted_total} depletions ({depleted_records} DEPLETED records, repeats after the crash included), \
         {restock_emails_total} restock emails, {} stock events, {} email requests, {} levels",
        stock_events.len(),
        email_requests.len(),
        levels.len()
    );
    assert_eq!(depleted_total, VENDORS / 2, "one depletion per exactly-stocked vendor");
}
