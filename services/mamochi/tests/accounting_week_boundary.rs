//! Accounting stopped before a week boundary, with last week's sales still
//! in the topic, and started again after the boundary plus the grace period:
//! last week's statement counts every one of its sales. The clock alone says
//! the week is over at restart; the close must wait until the backlog is
//! applied. Runs the real binary (`mamochi run accounting`) on a shared
//! sped-up platform clock.

//!
//! The week is a past one on purpose (no statement storm for every member
//! the database holds): it assumes no other accounting process shares the
//! database meanwhile, as `make test` runs test binaries one at a time; a
//! closer of another consumer group would close the week from its own view.

mod accounting_support;
mod support;

use std::collections::HashMap;
use std::time::Duration;

use accounting_support::*;
use mamochi_common::db;
use nix::sys::signal::Signal;
use uuid::Uuid;

/// 2026-W43 in Santiago (summer time, UTC-3): Monday 19 to Sunday 25
/// October; W44 starts Monday 26 October at 00:00 local. Written out by hand,
/// not computed by the code under test.
const W43_START: &str = "2026-10-19T03:00:00Z";
const W44_START: &str = "2026-10-26T03:00:00Z";
const GRACE_SECS: i64 = 3600;
/// Platform seconds per real second: the boundary comes 30 real seconds
/// after the start, the end of grace 30 seconds later.
const SCALE: f64 = 120.0;
const VENDORS: usize = 3;
const BEFORE_STOP_PER_VENDOR: i64 = 100;
const BACKLOG_PER_VENDOR: i64 = 4_000;
const NEXT_WEEK_PER_VENDOR: i64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_left_across_the_boundary_is_counted_in_its_own_week() {
    // Arrange: a clock an hour before W44 starts; vendors with their own prices.
    let settings = support::isolated_settings();
    let pool = db::pool(&settings.database).expect("pool");
    let w44_start = utc(W44_START);
    let clock = TestClock::starting_now_at(w44_start - chrono::Duration::hours(1), SCALE);
    let vendors: Vec<Uuid> = (0..VENDORS).map(|_| Uuid::new_v4()).collect();
    let mut expected_w43: HashMap<Uuid, (i64, i64, i64)> = HashMap::new();
    let mut expected_w44: HashMap<Uuid, (i64, i64, i64)> = HashMap::new();
    let before_stop =
        w43_sales(&vendors, BEFORE_STOP_PER_VENDOR, w44_start - chrono::Duration::hours(2), &mut expected_w43);
    // The backlog reaches W43's last millisecond.
    let mut backlog = w43_sales(&vendors, BACKLOG_PER_VENDOR, w44_start, &mut expected_w43);
    for (number, vendor) in vendors.iter().enumerate() {
        for step in 0..NEXT_WEEK_PER_VENDOR {
            let price = 2_000 + number as i64 * 100 + step;
            let totals = expected_w44.entry(*vendor).or_default();
            *totals = (totals.0 + 1, totals.1 + 1, totals.2 + price);
            backlog.push(sale(*vendor, w44_start + chrono::Duration::minutes(step * 3), 1, price));
        }
    }
    let total = (before_stop.len() + backlog.len()) as i64;

    // Act: accounting applies the first sales and is stopped before the boundary.
    let first = start_accounting(&settings, &clock, GRACE_SECS, 500);
    produce_sales(&settings, &before_stop).await;
    eventually(Duration::from_secs(60), "the first sales applied", || async {
        (applied(&pool, &vendors).await == before_stop.len() as i64).then_some(())
    })
    .await;
    first.stop(Signal::SIGTERM);
    let stopped_at = clock.now();
    // While it is down, the rest of W43 (and some of W44) reaches the topic,
    // and the clock passes the boundary and the grace period.
    produce_sales(&settings, &backlog).await;
    let sales_end = end_offsets(&settings, mamochi_events::topics::SALES.name());
    clock.wait_until(w44_start + chrono::Duration::seconds(GRACE_SECS) + chrono::Duration::minutes(2)).await;
    let restarted = start_accounting(&settings, &clock, GRACE_SECS, 500);
    let closed = eventually(Duration::from_secs(180), "every vendor's W43 statement", || async {
        let mut rows = Vec::new();
        for vendor in &vendors {
            rows.push(statements_of(&pool, *vendor, "2026-W43").await.into_iter().next()?);
        }
        Some(rows)
    })
    .await;
    // Every sale counted is not every record handled: a sale delivered again
    // would double a total only later. The group's committed offsets past
    // the backlog's end mean every record of it was handled.
    let group = settings.kafka.group(mamochi_accounting::GROUP);
    let sales_topic = mamochi_events::topics::SALES.name();
    wait_until_committed(&settings, &group, sales_topic, &sales_end, Duration::from_secs(120)).await;
    restarted.stop(Signal::SIGTERM);

    // Assert: stopped before the boundary; W43's statements count every W43
    // sale (count, units and CLP exact); W44's sales are in W44.
    assert!(stopped_at < w44_start, "accounting was stopped before the boundary (at {stopped_at})");
    assert_eq!(applied(&pool, &vendors).await, total, "every sale counted once");
    for (vendor, statement) in vendors.iter().zip(&closed) {
        let (sales, units, earnings) = expected_w43[vendor];
        assert_eq!((statement.1, statement.2, statement.3), (sales, units, earnings), "W43 statement of {vendor}");
        assert_eq!(statements_of(&pool, *vendor, "2026-W43").await.len(), 1);
        assert_eq!(week(&pool, *vendor, "2026-W43").await, Some((sales, units, earnings, true)));
        let (sales, units, earnings) = expected_w44[vendor];
        let w44 = week(&pool, *vendor, "2026-W44").await.map(|(sales, units, earnings, _)| (sales, units, earnings));
        assert_eq!(w44, Some((sales, units, earnings)), "W44 of {vendor}");
    }
}

/// `per_vendor` sales of each vendor spread evenly over W43 up to `until`
/// (exclusive), varied quantities and prices, added to `expected`.
fn w43_sales(
    vendors: &[Uuid],
    per_vendor: i64,
    until: chrono::DateTime<chrono::Utc>,
    expected: &mut HashMap<Uuid, (i64, i64, i64)>,
) -> Vec<mamochi_events::SaleRecorded> {
    let start = utc(W43_START);
    let span_ms = (until - start).num_milliseconds();
    let mut sales = Vec::new();
    for (number, vendor) in vendors.iter().enumerate() {
        for step in 0..per_vendor {
            // Step `per_vendor - 1` lands on `until` minus one millisecond.
            let at = start + chrono::Duration::milliseconds(span_ms * (step + 1) / per_vendor - 1);
            let quantity = (step % 3 + 1) as i32;
            let price = 1_000 + number as i64 * 100 + step % 7 * 10;
            let totals = expected.entry(*vendor).or_default();
            *totals = (totals.0 + 1, totals.1 + i64::from(quantity), totals.2 + i64::from(quantity) * price);
            sales.push(sale(*vendor, at, quantity, price));
        }
    }
    sales
}
