//! Two accounting processes in one consumer group, one of them killed with
//! SIGKILL in the middle of a backlog of last week's sales and started again:
//! every sale is counted once, each vendor gets exactly one statement for the
//! week, with every sale in it, and exactly one email request for it. The
//! week is already over by the clock when the processes start, so a closer
//! that trusted the clock (or its own partitions) would close it early.
//! Runs the real binary (`mamochi run accounting`), so the kill is a real
//! process death.

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
use mamochi_accounting::statement;
use mamochi_common::db;
use nix::sys::signal::Signal;
use uuid::Uuid;

/// 2026-W44 in Santiago (summer time, UTC-3): Monday 26 October to Sunday
/// 1 November. Written out by hand, not computed by the code under test.
const W44_START: &str = "2026-10-26T03:00:00Z";
const W45_START: &str = "2026-11-02T03:00:00Z";
const GRACE_SECS: i64 = 3600;
const VENDORS: usize = 4;
const SALES_PER_VENDOR: i64 = 10_000;
/// Small transactions, so the stream lasts long enough to be killed in.
const MAX_BATCH: usize = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_and_a_sigkill_give_one_exact_statement_and_one_email_per_vendor_week() {
    // Arrange: members who joined in W44, 40,000 of their W44 sales in Kafka,
    // and a clock two hours past W44's end plus grace.
    let settings = support::isolated_settings();
    let pool = db::pool(&settings.database).expect("pool");
    let (w44_start, w45_start) = (utc(W44_START), utc(W45_START));
    let vendors: Vec<Uuid> = (0..VENDORS).map(|_| Uuid::new_v4()).collect();
    for vendor in &vendors {
        add_member(&pool, *vendor, &format!("two-{}@example.cl", vendor.simple()), w44_start).await;
    }
    let mut expected: HashMap<Uuid, (i64, i64, i64)> = HashMap::new();
    let span_ms = (w45_start - w44_start).num_milliseconds();
    let sales: Vec<_> = (0..SALES_PER_VENDOR * VENDORS as i64)
        .map(|index| {
            let number = (index % VENDORS as i64) as usize;
            let vendor = vendors[number];
            let step = index / VENDORS as i64;
            let at = w44_start + chrono::Duration::milliseconds(span_ms * step / SALES_PER_VENDOR);
            let quantity = (index % 3 + 1) as i32;
            let price = 1_000 + number as i64 * 10 + index % 5 * 100;
            let totals = expected.entry(vendor).or_default();
            *totals = (totals.0 + 1, totals.1 + i64::from(quantity), totals.2 + i64::from(quantity) * price);
            sale(vendor, at, quantity, price)
        })
        .collect();
    produce_sales(&settings, &sales).await;
    let clock =
        TestClock::starting_now_at(w45_start + chrono::Duration::seconds(GRACE_SECS) + chrono::Duration::hours(2), 1.0);
    let emails = EmailRequests::from_now(&settings);
    let statement_ids: HashMap<Uuid, Uuid> =
        vendors.iter().map(|vendor| (*vendor, statement::statement_id(*vendor, "2026-W44"))).collect();

    // Act: two instances; one killed once part of the backlog is applied,
    // then started again, so two closers race for the week.
    let victim = start_accounting(&settings, &clock, GRACE_SECS, MAX_BATCH);
    let survivor = start_accounting(&settings, &clock, GRACE_SECS, MAX_BATCH);
    eventually(Duration::from_secs(120), "part of the backlog applied", || async {
        (applied(&pool, &vendors).await >= 4_000).then_some(())
    })
    .await;
    victim.stop(Signal::SIGKILL);
    let at_kill = applied(&pool, &vendors).await;
    println!("killed one accounting instance with {at_kill} of {} sales applied", sales.len());
    let restarted = start_accounting(&settings, &clock, GRACE_SECS, MAX_BATCH);
    let published = eventually(Duration::from_secs(240), "every vendor's W44 statement published", || async {
        let mut rows = Vec::new();
        for vendor in &vendors {
            let row = statements_of(&pool, *vendor, "2026-W44").await.into_iter().next()?;
            if !row.4 {
                return None;
            }
            rows.push(row);
        }
        Some(rows)
    })
    .await;
    // Both closers run on: each must complete two more passes (the first may
    // have started before the statements were published), so a second
    // statement or email request, if either closer were to make one, is on
    // the topic before the end the reader below stops at.
    for closer in [&survivor, &restarted] {
        let before = eventually(Duration::from_secs(30), "a closer's metrics", || closer.closing_passes()).await;
        eventually(Duration::from_secs(60), "two more closing passes", || async {
            closer.closing_passes().await.filter(|passes| *passes >= before + 2)
        })
        .await;
    }
    let requests = emails.read_to_end(&settings, Duration::from_secs(60)).await;
    restarted.stop(Signal::SIGTERM);
    survivor.stop(Signal::SIGTERM);

    // Assert: killed mid-stream; every sale counted once, in W44; one
    // statement per vendor with exact figures; one email request each.
    assert!(at_kill < sales.len() as i64, "the kill happened mid-stream ({at_kill} applied)");
    assert_eq!(applied(&pool, &vendors).await, sales.len() as i64, "every sale counted exactly once");
    for (vendor, row) in vendors.iter().zip(&published) {
        let (count, units, earnings) = expected[vendor];
        assert_eq!(row.0, statement_ids[vendor]);
        assert_eq!((row.1, row.2, row.3), (count, units, earnings), "W44 statement of {vendor}");
        assert_eq!(statements_of(&pool, *vendor, "2026-W44").await.len(), 1, "one statement for {vendor}");
        assert_eq!(week(&pool, *vendor, "2026-W44").await, Some((count, units, earnings, true)));
        assert_eq!(week(&pool, *vendor, "2026-W45").await.map(|row| row.0).unwrap_or(0), 0, "no late sales");
        let message_id = statement::email_message_id(statement_ids[vendor]);
        let sent: Vec<_> = requests.iter().filter(|email| email.message_id == message_id).collect();
        assert_eq!(sent.len(), 1, "one email request for {vendor}'s statement");
        assert_eq!(sent[0].to, format!("two-{}@example.cl", vendor.simple()));
        assert!(sent[0].body_text.contains("semana 2026-W44"), "{}", sent[0].body_text);
    }
}
