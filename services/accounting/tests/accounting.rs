//! The accounting service on the real stack: sales produced to Kafka, weekly
//! totals and statements read over SQL, statement events and email requests
//! read back from their topics, metrics over HTTP.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_accounting::sale::SaleFacts;
use mamochi_accounting::{statement, store};
use mamochi_common::schema::statements;
use mamochi_events::topics;
use mamochi_events::{EmailRequested, WeeklyStatementIssued};
use support::*;
use uuid::Uuid;

/// Santiago week boundaries, written out by hand (not computed by the code
/// under test). 2026-W36 contains the start of DST (clocks jump forward on
/// Sunday 2026-09-06), so it starts at UTC-4 and ends at UTC-3: 167 hours.
const W35_START: &str = "2026-08-24T04:00:00Z";
const W36_START: &str = "2026-08-31T04:00:00Z";
const W37_START: &str = "2026-09-07T03:00:00Z";
const W38_START: &str = "2026-09-14T03:00:00Z";
/// 2026-W47 (summer time, UTC-3): Monday 16 to Sunday 22 November.
const W47_START: &str = "2026-11-16T03:00:00Z";
const W47_END: &str = "2026-11-23T03:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_counted_exactly_per_vendor_and_santiago_week_including_a_dst_week() {
    let _serial = serial().await;
    // Arrange: platform time in W36, a grace period so long no week is due.
    let settings = settings(utc("2026-09-01T12:00:00Z"), 1.0, 365 * 24 * 3600);
    let pool = pool(&settings);
    let (ana, beto) = (Uuid::new_v4(), Uuid::new_v4());
    let mut sales = vec![
        // Boundary cases: Sunday 23:30 at UTC-4 is still W35; the first and
        // last instants of W36; 03:30 UTC on Monday 7 September is W37 (a
        // naive 168-hour week from W36's start would still call it W36).
        sale(ana, utc("2026-08-31T03:30:00Z"), 1, 1_000),
        sale(ana, utc(W36_START), 2, 1_500),
        sale(ana, utc("2026-09-07T02:59:59.999Z"), 1, 2_000),
        sale(ana, utc(W37_START), 3, 1_000),
        sale(ana, utc("2026-09-07T03:30:00Z"), 1, 2_500),
    ];
    let mut expected: HashMap<(Uuid, &str), (i64, i64, i64)> = HashMap::from([
        ((ana, "2026-W35"), (1, 1, 1_000)),
        ((ana, "2026-W36"), (2, 3, 5_000)),
        ((ana, "2026-W37"), (2, 4, 5_500)),
    ]);
    // A burst: 300 sales per vendor in each of W36 and W37, varied amounts.
    for (vendor, week, start, hours) in [
        (ana, "2026-W36", W36_START, 167),
        (ana, "2026-W37", W37_START, 168),
        (beto, "2026-W36", W36_START, 167),
        (beto, "2026-W37", W37_START, 168),
    ] {
        for index in 0..300_i64 {
            let at = utc(start) + chrono::Duration::minutes(index * hours * 60 / 300);
            let quantity = (index % 4 + 1) as i32;
            let price = 800 + (index % 7) * 350;
            sales.push(sale(vendor, at, quantity, price));
            let totals = expected.entry((vendor, week)).or_default();
            *totals = (totals.0 + 1, totals.1 + i64::from(quantity), totals.2 + i64::from(quantity) * price);
        }
    }
    let count = sales.len() as i64;

    // Act
    let service = start(&settings);
    produce_sales(&settings, &sales).await;
    eventually(Duration::from_secs(60), "every sale counted", || async {
        (total_sales(&pool, &[ana, beto]).await == count).then_some(())
    })
    .await;
    service.stop().await;

    // Assert: exact totals per vendor and week, and the weeks' real bounds.
    for ((vendor, week), (sales_count, units, earnings)) in &expected {
        let row = week_row(&pool, *vendor, week).await.unwrap_or_else(|| panic!("row for {week}"));
        assert_eq!((row.sales_count, row.units, row.earnings_clp), (*sales_count, *units, *earnings), "{week}");
        assert_eq!(row.closed_at, None, "{week} is not due");
    }
    let w35 = week_row(&pool, ana, "2026-W35").await.expect("W35");
    let w36 = week_row(&pool, ana, "2026-W36").await.expect("W36");
    let w37 = week_row(&pool, beto, "2026-W37").await.expect("W37");
    assert_eq!((w35.week_start, w35.week_end), (utc(W35_START), utc(W36_START)));
    assert_eq!((w36.week_start, w36.week_end), (utc(W36_START), utc(W37_START)));
    assert_eq!(w36.week_end - w36.week_start, chrono::Duration::hours(167), "the DST week is 167 hours");
    assert_eq!((w37.week_start, w37.week_end), (utc(W37_START), utc(W38_START)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_sale_is_counted_once() {
    let _serial = serial().await;
    // Arrange
    let settings = settings(utc("2026-11-18T12:00:00Z"), 1.0, 24 * 3600);
    let pool = pool(&settings);
    let vendor = Uuid::new_v4();
    let first = sale(vendor, utc("2026-11-18T10:00:00Z"), 2, 1_500);
    let second = sale(vendor, utc("2026-11-18T11:00:00Z"), 1, 1_000);
    let service = start(&settings);

    // Act: the first sale, then the same sale again (a producer retry or a
    // replay) twice, in the same burst as a new one.
    produce_sales(&settings, std::slice::from_ref(&first)).await;
    eventually(Duration::from_secs(60), "the first sale", || async {
        (total_sales(&pool, &[vendor]).await == 1).then_some(())
    })
    .await;
    produce_sales(&settings, &[first.clone(), second.clone(), first.clone()]).await;
    // The group's committed offsets passing the burst's end mean every one of
    // its records, the repeat after the new sale included, was handled.
    let burst_end = sales_end_offsets(&settings);
    wait_until_accounting_read(&settings, &burst_end, Duration::from_secs(60)).await;
    let metrics = service.metrics().await;
    service.stop().await;

    // Assert
    let row = week_row(&pool, vendor, "2026-W47").await.expect("W47 row");
    assert_eq!((row.sales_count, row.units, row.earnings_clp), (2, 3, 4_000));
    assert!(metric(&metrics, "mamochi_accounting_sales_duplicate_total") >= 2.0, "{metrics}");
    assert!(metric(&metrics, "mamochi_accounting_sales_applied_total") >= 2.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_closes_a_quiet_members_week_with_a_zero_statement() {
    let _serial = serial().await;
    // Arrange: a member who joined on Tuesday of W47 and sold nothing; platform
    // time half an hour before W47 ends, one platform hour per real second,
    // one hour of grace: W47 is due after about 1.5 real seconds.
    let settings = settings(utc(W47_END) - chrono::Duration::minutes(30), 3600.0, 3600);
    let pool = pool(&settings);
    let member = Uuid::new_v4();
    let email = format!("quiet-{}@example.cl", member.simple());
    add_member(&pool, member, "Carmen Quiet", &email, utc("2026-11-17T12:00:00Z")).await;
    let statement_id = statement::statement_id(member, "2026-W47");
    let (statements_mark, emails_mark) =
        (end_offsets(&settings, &topics::STATEMENTS), end_offsets(&settings, &topics::EMAIL_REQUESTS));

    // Act
    let service = start(&settings);
    let published = eventually(Duration::from_secs(30), "the W47 statement published", || async {
        statement_rows(&pool, member, "2026-W47").await.into_iter().find(|row| row.published_at.is_some())
    })
    .await;
    let metrics = service.metrics().await;
    service.stop().await;

    // Assert: the week closed with zeros, one statement, nothing before joining.
    assert_eq!(published.statement_id, statement_id);
    assert_eq!(
        (published.sales_count, published.units, published.earnings_clp, published.average_ticket_clp),
        (0, 0, 0, 0)
    );
    let row = week_row(&pool, member, "2026-W47").await.expect("W47 row created by the closer");
    assert!(row.closed_at.is_some());
    assert_eq!((row.week_start, row.week_end), (utc(W47_START), utc(W47_END)));
    assert!(statement_rows(&pool, member, "2026-W46").await.is_empty(), "no statement before the member joined");

    let issued: Vec<WeeklyStatementIssued> = read_topic(&settings, &topics::STATEMENTS, &statements_mark)
        .await
        .into_iter()
        .filter(|event: &WeeklyStatementIssued| event.statement_id == statement_id)
        .collect();
    assert_eq!(issued.len(), 1);
    assert_eq!((issued[0].sales_count, issued[0].earnings_clp, issued[0].week_start), (0, 0, utc(W47_START)));
    let emails: Vec<EmailRequested> = read_topic(&settings, &topics::EMAIL_REQUESTS, &emails_mark)
        .await
        .into_iter()
        .filter(|email: &EmailRequested| email.message_id == statement::email_message_id(statement_id))
        .collect();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to, email);
    assert_eq!(emails[0].category, "statement");
    assert!(emails[0].body_text.contains("Número de ventas: 0\n"), "{}", emails[0].body_text);
    assert!(emails[0].body_text.contains("Ganancias: $0\n"), "{}", emails[0].body_text);
    assert!(metric(&metrics, "mamochi_accounting_weeks_closed_total") >= 1.0, "{metrics}");
    assert!(metric(&metrics, "mamochi_accounting_statements_published_total") >= 1.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_yields_exactly_one_statement_event_and_email_even_when_the_closer_runs_again() {
    let _serial = serial().await;
    // Arrange: the clock stands two hours before W47 ends; the vendor's own
    // later sale (W48) moves event time past W47's end plus the grace hour.
    let settings = settings(utc(W47_END) - chrono::Duration::hours(2), 1.0, 3600);
    let pool = pool(&settings);
    let joined = utc("2026-11-17T12:00:00Z");
    let member = Uuid::new_v4();
    let email = format!("rosa-{}@example.cl", member.simple());
    add_member(&pool, member, "Rosa Pérez", &email, joined).await;
    let statement_id = statement::statement_id(member, "2026-W47");
    let message_id = statement::email_message_id(statement_id);
    let sales = [
        sale(member, utc("2026-11-18T15:00:00Z"), 1, 1_000),
        sale(member, utc("2026-11-20T15:00:00Z"), 2, 1_500),
        sale(member, utc("2026-11-22T22:00:00Z"), 1, 2_500),
        sale(member, utc(W47_END) + chrono::Duration::hours(2), 1, 1_000),
    ];
    let published_of = |vendor: Uuid| {
        let pool = pool.clone();
        move || {
            let pool = pool.clone();
            async move { statement_rows(&pool, vendor, "2026-W47").await.into_iter().find(|row| row.published_at.is_some()) }
        }
    };
    let marks = Marks::now(&settings);

    // Act: close and publish, then stop.
    let service = start(&settings);
    produce_sales(&settings, &sales).await;
    let sales_end = sales_end_offsets(&settings);
    let statement = eventually(Duration::from_secs(60), "the W47 statement published", published_of(member)).await;
    wait_until_accounting_read(&settings, &sales_end, Duration::from_secs(60)).await;
    service.stop().await;
    let committed_at_stop = accounting_committed(&settings);

    // Act: restart. Two members who joined in W47 arrive while it is down,
    // the second only once the first one's statement is out: the second is
    // closed by a pass that started after the restarted closer's first pass
    // (the one that would re-close or re-publish the closed week) finished.
    // A new W48 sale of the vendor is read after its four earlier ones.
    let (second, third) = (Uuid::new_v4(), Uuid::new_v4());
    add_member(&pool, second, "Juan Soto", &format!("juan-{}@example.cl", second.simple()), joined).await;
    let again = start(&settings);
    eventually(Duration::from_secs(60), "the second member's W47 statement", published_of(second)).await;
    add_member(&pool, third, "Marta Rojas", &format!("marta-{}@example.cl", third.simple()), joined).await;
    eventually(Duration::from_secs(60), "the third member's W47 statement", published_of(third)).await;
    let later = sale(member, utc(W47_END) + chrono::Duration::hours(30), 2, 1_100);
    produce_sales(&settings, std::slice::from_ref(&later)).await;
    let later_end = sales_end_offsets(&settings);
    wait_until_accounting_read(&settings, &later_end, Duration::from_secs(60)).await;
    again.stop().await;

    // Assert: the first instance committed past every sale on shutdown, so
    // the restart resumed there and no sale was counted twice.
    for (partition, end) in &sales_end {
        let committed = committed_at_stop.iter().find(|(p, _)| p == partition).map(|(_, offset)| *offset);
        assert!(committed.is_some_and(|offset| offset >= *end), "partition {partition}: {committed:?} < {end}");
    }
    assert_eq!(total_sales(&pool, &[member]).await, 5, "four sales and the later one, each once");
    // The statement is the one first published, with the week's exact figures.
    let rows = statement_rows(&pool, member, "2026-W47").await;
    assert_eq!(rows, std::slice::from_ref(&statement), "unchanged, published_at included");
    assert_eq!((statement.sales_count, statement.units, statement.earnings_clp), (3, 4, 6_500));
    assert_eq!(statement.average_ticket_clp, 2_167, "6500 / 3 = 2166.67 rounds to 2167");
    let w47 = week_row(&pool, member, "2026-W47").await.expect("W47");
    assert_eq!((w47.sales_count, w47.units, w47.earnings_clp), (3, 4, 6_500));
    assert!(w47.closed_at.is_some());
    // One event and one email request on the topics, whatever the restart did.
    let issued = statement_events(&settings, &marks, statement_id).await;
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!((issued[0].sales_count, issued[0].earnings_clp, issued[0].average_ticket_clp), (3, 6_500, 2_167));
    let emails = statement_emails(&settings, &marks, message_id).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(emails[0].to, email);
    for line in [
        "Hola Rosa Pérez:",
        "semana 2026-W47",
        "Número de ventas: 3\n",
        "Porciones vendidas: 4\n",
        "Ganancias: $6.500\n",
        "Ticket promedio: $2.167\n",
    ] {
        assert!(emails[0].body_text.contains(line), "missing {line:?} in:\n{}", emails[0].body_text);
    }
    // The members who joined while it was down got theirs, with zeros.
    for vendor in [second, third] {
        let rows = statement_rows(&pool, vendor, "2026-W47").await;
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].sales_count, rows[0].earnings_clp), (0, 0));
    }

    // Act: a crash after Kafka acknowledged but before published_at committed.
    let mut conn = pool.get().await.expect("connection");
    diesel::update(statements::table.find(statement_id))
        .set(statements::published_at.eq(None::<chrono::DateTime<Utc>>))
        .execute(&mut conn)
        .await
        .expect("forget publication");
    drop(conn);
    let recovered = start(&settings);
    eventually(Duration::from_secs(30), "the statement published again", published_of(member)).await;
    recovered.stop().await;

    // Assert: the same statement re-published under the same ids, so the
    // notifier (which sends each message id once) still sends one email.
    assert_eq!(statement_rows(&pool, member, "2026-W47").await.len(), 1);
    let issued = statement_events(&settings, &marks, statement_id).await;
    assert_eq!(issued.len(), 2);
    assert_eq!(issued[0], issued[1], "identical statement events");
    let emails = statement_emails(&settings, &marks, message_id).await;
    assert_eq!(emails.len(), 2);
    assert!(emails.iter().all(|email| email.message_id == message_id && email.body_text == emails[0].body_text));
}

/// Marks taken before a test's act: the ends of the statements and the
/// email-requests topics.
struct Marks {
    statements: Vec<(i32, i64)>,
    emails: Vec<(i32, i64)>,
}

impl Marks {
    fn now(settings: &mamochi_common::Settings) -> Self {
        Self {
            statements: end_offsets(settings, &topics::STATEMENTS),
            emails: end_offsets(settings, &topics::EMAIL_REQUESTS),
        }
    }
}

/// Every event of `statement_id` written since `marks` and before the call.
async fn statement_events(
    settings: &mamochi_common::Settings,
    marks: &Marks,
    statement_id: Uuid,
) -> Vec<WeeklyStatementIssued> {
    read_topic(settings, &topics::STATEMENTS, &marks.statements)
        .await
        .into_iter()
        .filter(|event: &WeeklyStatementIssued| event.statement_id == statement_id)
        .collect()
}

/// Every email request with `message_id` written since `marks` and before the call.
async fn statement_emails(settings: &mamochi_common::Settings, marks: &Marks, message_id: Uuid) -> Vec<EmailRequested> {
    read_topic(settings, &topics::EMAIL_REQUESTS, &marks.emails)
        .await
        .into_iter()
        .filter(|email: &EmailRequested| email.message_id == message_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_sale_leaves_the_closed_statement_alone_and_counts_in_the_open_week() {
    let _serial = serial().await;
    // Arrange: W47 with one sale, closed once event time passes its end + 1 h.
    let settings = settings(utc(W47_END) - chrono::Duration::hours(2), 1.0, 3600);
    let pool = pool(&settings);
    let member = Uuid::new_v4();
    add_member(
        &pool,
        member,
        "Luis Tarde",
        &format!("late-{}@example.cl", member.simple()),
        utc("2026-11-17T12:00:00Z"),
    )
    .await;
    let on_time = sale(member, utc("2026-11-20T15:00:00Z"), 2, 1_000);
    let next_week = sale(member, utc(W47_END) + chrono::Duration::hours(2), 1, 1_200);
    let service = start(&settings);
    produce_sales(&settings, &[on_time, next_week]).await;
    let closed = eventually(Duration::from_secs(60), "W47 closed", || async {
        statement_rows(&pool, member, "2026-W47").await.into_iter().next()
    })
    .await;

    // Act: a sale that happened in W47 arrives after W47 closed.
    let late = sale(member, utc("2026-11-22T20:00:00Z"), 3, 1_500);
    produce_sales(&settings, std::slice::from_ref(&late)).await;
    let w48 = eventually(Duration::from_secs(30), "the late sale counted", || async {
        week_row(&pool, member, "2026-W48").await.filter(|row| row.sales_count == 2)
    })
    .await;
    let metrics = service.metrics().await;
    service.stop().await;

    // Assert: the closed week and its statement did not change; the late sale
    // is in the vendor's open week (the one containing platform now).
    assert_eq!((closed.sales_count, closed.units, closed.earnings_clp), (1, 2, 2_000));
    assert_eq!(statement_rows(&pool, member, "2026-W47").await.len(), 1);
    let statement_now = &statement_rows(&pool, member, "2026-W47").await[0];
    assert_eq!((statement_now.sales_count, statement_now.units, statement_now.earnings_clp), (1, 2, 2_000));
    let w47 = week_row(&pool, member, "2026-W47").await.expect("W47");
    assert_eq!((w47.sales_count, w47.units, w47.earnings_clp), (1, 2, 2_000));
    assert_eq!((w48.sales_count, w48.units, w48.earnings_clp), (2, 4, 1_200 + 4_500));
    assert!(w48.closed_at.is_none());
    assert!(metric(&metrics, "mamochi_accounting_sales_late_total") >= 1.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_stream_loses_nothing_and_counts_nothing_twice() {
    let _serial = serial().await;
    // Arrange: 40,000 sales of four vendors in the open week W47.
    let settings = settings(utc("2026-11-18T12:00:00Z"), 1.0, 24 * 3600);
    let pool = pool(&settings);
    let vendors: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    let mut expected: HashMap<Uuid, (i64, i64, i64)> = HashMap::new();
    let sales: Vec<_> = (0..40_000_i64)
        .map(|index| {
            let vendor = vendors[(index % 4) as usize];
            let quantity = (index % 3 + 1) as i32;
            let price = 1_000 + (index % 5) * 250;
            let totals = expected.entry(vendor).or_default();
            *totals = (totals.0 + 1, totals.1 + i64::from(quantity), totals.2 + i64::from(quantity) * price);
            sale(vendor, utc("2026-11-16T12:00:00Z") + chrono::Duration::seconds(index * 10), quantity, price)
        })
        .collect();
    let before_burst = sales_end_offsets(&settings);
    produce_sales(&settings, &sales).await;
    let burst_end = sales_end_offsets(&settings);

    // Act: kill the service while it is applying them; as after a hard crash,
    // lose every offset commit made since the burst began (so every sale
    // already applied is delivered again); then start it again.
    let crashing = start(&settings);
    let at_crash = eventually(Duration::from_secs(120), "sales being applied", || async {
        let applied = total_sales(&pool, &vendors).await;
        (applied > 0).then_some(applied)
    })
    .await;
    crashing.abort().await;
    rewind_accounting_group(&settings, &before_burst);
    let restarted_at = Instant::now();
    let service = start(&settings);
    eventually(Duration::from_secs(180), "all sales applied", || async {
        (total_sales(&pool, &vendors).await >= 40_000).then_some(())
    })
    .await;
    let elapsed = restarted_at.elapsed();
    // All counted is not all handled: a re-delivered sale after the last new
    // one would double a total only later. Committed offsets past the burst
    // mean every record of it was handled.
    wait_until_accounting_read(&settings, &burst_end, Duration::from_secs(120)).await;
    let metrics = service.metrics().await;
    service.stop().await;

    // Assert: exact totals; nothing lost, nothing doubled.
    eprintln!(
        "crashed with {at_crash} of 40000 applied; the rest applied {:.1} s after restart ({:.0} sales/s including start-up)",
        elapsed.as_secs_f64(),
        (40_000 - at_crash) as f64 / elapsed.as_secs_f64()
    );
    assert!(at_crash < 40_000, "the crash happened mid-stream ({at_crash} applied)");
    assert_eq!(total_sales(&pool, &vendors).await, 40_000);
    for (vendor, (count, units, earnings)) in &expected {
        let row = week_row(&pool, *vendor, "2026-W47").await.expect("W47 row");
        assert_eq!((row.sales_count, row.units, row.earnings_clp), (*count, *units, *earnings));
    }
    assert!(
        metric(&metrics, "mamochi_accounting_sales_duplicate_total") >= at_crash as f64,
        "re-delivered sales were recognised: {metrics}"
    );
    assert!(metric(&metrics, "mamochi_accounting_batch_size_count") >= 1.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_over_by_the_clock_stays_open_until_its_backlog_is_applied() {
    let _serial = serial().await;
    // Arrange: the clock three hours past W47's end (grace one hour) and a
    // backlog of W47 sales in the topic that accounting has not read yet.
    let settings = settings(utc(W47_END) + chrono::Duration::hours(3), 1.0, 3600);
    let pool = pool(&settings);
    let vendors: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let mut expected: HashMap<Uuid, (i64, i64, i64)> = HashMap::new();
    let sales: Vec<_> = (0..15_000_i64)
        .map(|index| {
            let vendor = vendors[(index % 3) as usize];
            let quantity = (index % 4 + 1) as i32;
            let price = 900 + (index % 6) * 150;
            let totals = expected.entry(vendor).or_default();
            *totals = (totals.0 + 1, totals.1 + i64::from(quantity), totals.2 + i64::from(quantity) * price);
            sale(vendor, utc(W47_START) + chrono::Duration::seconds(index * 40), quantity, price)
        })
        .collect();
    produce_sales(&settings, &sales).await;

    // Act
    let service = start(&settings);
    let statements = eventually(Duration::from_secs(120), "every vendor's W47 statement", || async {
        let mut rows = Vec::new();
        for vendor in &vendors {
            rows.push(statement_rows(&pool, *vendor, "2026-W47").await.into_iter().next()?);
        }
        Some(rows)
    })
    .await;
    let metrics = service.metrics().await;
    service.stop().await;

    // Assert: every W47 sale is in W47's statement; none was counted late.
    for (vendor, statement) in vendors.iter().zip(&statements) {
        let (count, units, earnings) = expected[vendor];
        assert_eq!((statement.sales_count, statement.units, statement.earnings_clp), (count, units, earnings));
        assert_eq!(week_row(&pool, *vendor, "2026-W48").await, None, "no late sale moved to W48");
    }
    assert_eq!(total_sales(&pool, &vendors).await, 15_000);
    assert!(metric(&metrics, "mamochi_accounting_close_horizon_ms") > 0.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_sales_move_their_partitions_watermarks_forward_only() {
    let _serial = serial().await;
    // Arrange: a group of this test's own; sales read from partitions 1 and 4.
    let settings = settings(utc("2026-11-18T12:00:00Z"), 1.0, 24 * 3600);
    let pool = pool(&settings);
    let group = settings.kafka.group(mamochi_accounting::GROUP);
    let vendor = Uuid::new_v4();
    let facts = |at: &str, partition: i32, offset: i64| {
        SaleFacts::from_event(&sale(vendor, utc(at), 1, 1_000)).expect("valid sale").at(partition, offset)
    };
    let mut conn = pool.get().await.expect("connection");
    let now = utc("2026-11-18T12:00:00Z");

    // Act: one batch over two partitions, then a batch that is behind on
    // partition 1 (an earlier sale time and offset, as after a rebalance).
    let first = [
        facts("2026-11-18T10:00:00Z", 1, 40),
        facts("2026-11-18T09:00:00Z", 1, 41),
        facts("2026-11-18T08:00:00Z", 4, 7),
    ];
    store::apply_sales_read_by(&mut conn, &group, &first, now).await.expect("first batch");
    let behind = [facts("2026-11-18T07:00:00Z", 1, 12)];
    store::apply_sales_read_by(&mut conn, &group, &behind, now).await.expect("second batch");
    let watermarks = store::watermarks(&mut conn, &group).await.expect("watermarks");

    // Assert: per partition, the latest sale time and the offset after the
    // last sale; neither went back; every sale counted.
    let found: Vec<(i32, chrono::DateTime<Utc>, i64)> =
        watermarks.iter().map(|row| (row.partition, row.event_time, row.next_offset)).collect();
    assert_eq!(found, [(1, utc("2026-11-18T10:00:00Z"), 42), (4, utc("2026-11-18T08:00:00Z"), 8)]);
    assert_eq!(total_sales(&pool, &[vendor]).await, 4);
}
