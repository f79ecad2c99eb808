//! The distributor draining a backlog of sales in batches: ten thousand
//! sales of several vendors, already in `mamochi.sales` when it starts, end
//! in exactly the stock, alerts, depletions and restocks the stock rules
//! give when applied one sale at a time; refused sales are parked without
//! holding back the rest; each changed cart's last level is on
//! `mamochi.cart-stock`.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::Utc;
use mamochi_common::kafka;
use mamochi_distributor::derived::derived_id;
use mamochi_distributor::rules::{self, Cart};
use mamochi_events::codec::EventCodec;
use mamochi_events::topics::{CART_STOCK, EMAIL_REQUESTS, SALES, STOCK};
use mamochi_events::{PaymentMethod, SaleRecorded, StockEventKind, VendorKey};
use support::{applied_count, cart, eventually, read_to_end, Running, SERIAL};
use uuid::Uuid;

const SALES_PER_VENDOR: usize = 2_500;
const WAIT: Duration = Duration::from_secs(180);

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

/// What the rules say one vendor's sales do, applied one at a time.
#[derive(Debug, Default)]
struct Expected {
    final_cart: Option<Cart>,
    low_stock: BTreeSet<Uuid>,
    depleted: BTreeSet<Uuid>,
}

fn oracle(initial: i32, sales: &[&SaleRecorded], threshold: i32) -> Expected {
    let mut cart = Cart { stock: initial, low_stock_alerted: false };
    let mut expected = Expected::default();
    for (index, sale) in sales.iter().enumerate() {
        let effect = rules::apply_sale(cart, sale.quantity, threshold).expect("valid sale");
        if effect.low_stock_alert {
            expected.low_stock.insert(sale.sale_id);
        }
        if effect.depleted {
            // The restock arrives asynchronously; the scenario keeps its
            // outcome independent of timing by depleting on the last sale.
            assert_eq!(index, sales.len() - 1, "the scenario depletes only on a vendor's last sale");
            expected.depleted.insert(sale.sale_id);
        }
        cart = Cart { stock: effect.stock_after, low_stock_alerted: cart.low_stock_alerted || effect.low_stock_alert };
    }
    expected.final_cart = Some(cart);
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_sales_ends_exactly_as_the_rules_say() {
    let _serial = SERIAL.lock().await;
    // Arrange: four vendors, 2,500 sales each of 1 to 3 servings; carts
    // holding exactly their sales (depleted by the last one), or 1, 2 or 7
    // servings more. One sale of a stranger and one of zero servings in the
    // middle of the stream.
    let settings = support::settings();
    let pool = support::pool(&settings);
    let codec = EventCodec::new(&settings.registry.url);
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let threshold = settings.distributor.low_stock_threshold;
    let margins = [0, 1, 2, 7];
    let mut vendors = Vec::new();
    let mut streams = Vec::new();
    for (index, margin) in margins.iter().enumerate() {
        let quantities: Vec<i32> = (0..SALES_PER_VENDOR).map(|n| ((n * 7 + index) % 3) as i32 + 1).collect();
        let initial = quantities.iter().sum::<i32>() + margin;
        let vendor = support::vendor_with_cart(&pool, initial).await;
        streams.push(quantities.into_iter().map(|quantity| sale(vendor.id, quantity)).collect::<Vec<_>>());
        vendors.push((vendor, initial));
    }
    // Interleave the vendors, keeping each vendor's own order.
    let mut sales: Vec<SaleRecorded> =
        (0..SALES_PER_VENDOR).flat_map(|n| streams.iter().map(move |stream| stream[n].clone())).collect();
    let stranger = sale(Uuid::new_v4(), 1);
    let zero = sale(vendors[3].0.id, 0);
    sales.insert(sales.len() / 2, stranger.clone());
    sales.insert(sales.len() / 2 + 1, zero.clone());
    let expected: HashMap<Uuid, Expected> = vendors
        .iter()
        .map(|(vendor, initial)| {
            let own: Vec<&SaleRecorded> =
                sales.iter().filter(|sale| sale.vendor_id == vendor.id && sale.quantity > 0).collect();
            (vendor.id, oracle(*initial, &own, threshold))
        })
        .collect();
    let applicable: Vec<Uuid> = sales
        .iter()
        .filter(|sale| sale.sale_id != stranger.sale_id && sale.quantity > 0)
        .map(|sale| sale.sale_id)
        .collect();
    support::produce_in_order(&producer, &codec, &SALES, &sales, |sale| VendorKey { vendor_id: sale.vendor_id }).await;

    // Act: start the distributor on that backlog.
    let started = Instant::now();
    let service = Running::start(&settings).await;
    eventually(WAIT, "every valid sale to apply", || async {
        (applied_count(&pool, "distributor", &applicable).await == applicable.len() as i64).then_some(())
    })
    .await;
    let drained = started.elapsed();
    println!(
        "drained {} sales in {:.2}s: {:.0} sales/s (debug build, including start-up)",
        applicable.len(),
        drained.as_secs_f64(),
        applicable.len() as f64 / drained.as_secs_f64()
    );
    let vendor_ids: Vec<Uuid> = vendors.iter().map(|(vendor, _)| vendor.id).collect();
    let depleting: Vec<Uuid> =
        vendor_ids.iter().copied().filter(|vendor| !expected[vendor].depleted.is_empty()).collect();
    eventually(WAIT, "the depleted carts to be restocked", || async {
        for vendor in &depleting {
            cart(&pool, *vendor).await.filter(|(_, _, restocks)| *restocks >= 1)?;
        }
        Some(())
    })
    .await;
    support::all_relayed(&pool).await;
    let stock_events: Vec<_> = read_to_end(&settings, &codec, &STOCK)
        .await
        .into_iter()
        .filter(|event| vendor_ids.contains(&event.vendor_id))
        .collect();
    let emails: Vec<_> = read_to_end(&settings, &codec, &EMAIL_REQUESTS)
        .await
        .into_iter()
        .filter(|email| vendors.iter().any(|(vendor, _)| vendor.email == email.to))
        .collect();
    let levels: Vec<_> = read_to_end(&settings, &codec, &CART_STOCK)
        .await
        .into_iter()
        .filter(|level| vendor_ids.contains(&level.vendor_id))
        .collect();

    // Assert: per vendor, the cart, its events, emails and last level.
    let stranger_or_zero = [stranger.sale_id, zero.sale_id];
    assert_eq!(applied_count(&pool, "distributor", &stranger_or_zero).await, 0, "refused sales are not applied");
    for (vendor, _) in &vendors {
        let want = &expected[&vendor.id];
        let final_cart = want.final_cart.expect("simulated");
        let restocked = !want.depleted.is_empty();
        let (stock, alerted, restocks) = cart(&pool, vendor.id).await.expect("cart");
        if restocked {
            let restock = settings.distributor.restock_quantity;
            assert_eq!((stock, alerted, restocks), (restock, false, 1), "vendor {}: refilled once", vendor.id);
        } else {
            assert_eq!(
                (stock, alerted, restocks),
                (final_cart.stock, final_cart.low_stock_alerted, 0),
                "vendor {}",
                vendor.id
            );
        }
        let ids_of = |kind: StockEventKind| -> Vec<Uuid> {
            stock_events.iter().filter(|e| e.vendor_id == vendor.id && e.kind == kind).map(|e| e.event_id).collect()
        };
        let derived = |label: &str, sources: &BTreeSet<Uuid>| -> Vec<Uuid> {
            let mut ids: Vec<Uuid> = sources.iter().map(|source| derived_id(label, *source)).collect();
            ids.sort();
            ids
        };
        let sorted = |mut ids: Vec<Uuid>| {
            ids.sort();
            ids
        };
        assert_eq!(
            sorted(ids_of(StockEventKind::LowStock)),
            derived("low_stock", &want.low_stock),
            "LOW_STOCK once per crossing"
        );
        assert_eq!(
            sorted(ids_of(StockEventKind::Depleted)),
            derived("depleted", &want.depleted),
            "DEPLETED once per trip to zero"
        );
        let depleted_events: BTreeSet<Uuid> = want.depleted.iter().map(|sale| derived_id("depleted", *sale)).collect();
        assert_eq!(sorted(ids_of(StockEventKind::Replenished)), derived("replenished", &depleted_events));
        let mut restock_emails: Vec<Uuid> = emails
            .iter()
            .filter(|email| email.to == vendor.email && email.category == "restock")
            .map(|email| email.message_id)
            .collect();
        restock_emails.sort();
        assert_eq!(restock_emails, derived("restock", &depleted_events), "one restock email per depletion");
        let low_stock_emails =
            emails.iter().filter(|email| email.to == vendor.email && email.category == "low_stock").count();
        assert_eq!(low_stock_emails, want.low_stock.len());
        let last = levels.iter().rev().find(|level| level.vendor_id == vendor.id).expect("a published level");
        assert_eq!(
            (last.stock, last.restocks),
            (stock, restocks),
            "vendor {}: last published level is the cart",
            vendor.id
        );
    }
    let (_, metrics) = support::get(service.ops_port, "/metrics").await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    let (transactions, batched) =
        (value("mamochi_distributor_batch_sales_count"), value("mamochi_distributor_batch_sales_sum"));
    println!("{batched} sales in {transactions} transactions ({:.0} per transaction)", batched / transactions);
    assert!(batched >= 10.0 * transactions, "the backlog is applied in batches, not one sale per transaction");
    service.stop().await;
}
