//! Daily figures on the real stack: sales produced to Kafka, counted by
//! accounting into `daily_sales` (America/Santiago day and hour), read back
//! over SQL, across both daylight-saving changes of 2026; and the daily
//! summary emails, read back from the email-requests topic.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use diesel::sql_types::{BigInt, Date, SmallInt};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use mamochi_accounting::summary;
use mamochi_common::db::PgPool;
use mamochi_events::{topics, EmailRequested};
use support::*;
use uuid::Uuid;

#[derive(Debug, QueryableByName)]
struct HourRow {
    #[diesel(sql_type = Date)]
    local_date: NaiveDate,
    #[diesel(sql_type = SmallInt)]
    local_hour: i16,
    #[diesel(sql_type = BigInt)]
    sales: i64,
    #[diesel(sql_type = BigInt)]
    units: i64,
    #[diesel(sql_type = BigInt)]
    earnings_clp: i64,
}

/// Every `daily_sales` row of `vendor`, as (date, hour) → (sales, units, earnings).
async fn daily_rows(pool: &PgPool, vendor: Uuid) -> BTreeMap<(NaiveDate, i16), (i64, i64, i64)> {
    let mut conn = pool.get().await.expect("connection");
    diesel::sql_query("SELECT local_date, local_hour, sales, units, earnings_clp FROM daily_sales WHERE vendor_id = $1")
        .bind::<diesel::sql_types::Uuid, _>(vendor)
        .load::<HourRow>(&mut conn)
        .await
        .expect("query daily_sales")
        .into_iter()
        .map(|row| ((row.local_date, row.local_hour), (row.sales, row.units, row.earnings_clp)))
        .collect()
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
}

/// Day totals of `rows` for `day`.
fn day_total(rows: &BTreeMap<(NaiveDate, i16), (i64, i64, i64)>, day: NaiveDate) -> (i64, i64, i64) {
    rows.iter()
        .filter(|((date, _), _)| *date == day)
        .fold((0, 0, 0), |acc, (_, (sales, units, earnings))| (acc.0 + sales, acc.1 + units, acc.2 + earnings))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_day_clocks_go_back_has_25_hours_and_counts_both_2300_hours_once() {
    let _serial = serial().await;
    // Arrange: platform time after both days; a grace so long no week closes.
    let settings = settings(utc("2026-09-08T12:00:00Z"), 1.0, 365 * 24 * 3600);
    let pool = pool(&settings);
    let vendor = Uuid::new_v4();
    // (instant, local date and hour written out by hand, quantity, price).
    // 2026-04-04 runs from 03:00 UTC (midnight at UTC-3) to 04:00 UTC on the
    // 5th (midnight at UTC-4): clocks go back at 24:00 to 23:00.
    let cases = [
        ("2026-04-04T02:59:59Z", "2026-04-03", 23, 1, 1_000), // the 3rd's last second
        ("2026-04-04T03:00:00Z", "2026-04-04", 0, 2, 1_500),  // the 4th's first instant
        ("2026-04-04T15:30:00Z", "2026-04-04", 12, 1, 2_000),
        ("2026-04-05T02:15:00Z", "2026-04-04", 23, 3, 1_000), // first 23:00 hour (UTC-3)
        ("2026-04-05T02:59:59Z", "2026-04-04", 23, 1, 800),
        ("2026-04-05T03:00:00Z", "2026-04-04", 23, 2, 900), // second 23:00 hour (UTC-4)
        ("2026-04-05T03:45:00Z", "2026-04-04", 23, 1, 1_200),
        ("2026-04-05T03:59:59Z", "2026-04-04", 23, 1, 1_100), // the 4th's last second
        ("2026-04-05T04:00:00Z", "2026-04-05", 0, 4, 500),    // the 5th's first instant
        // 2026-09-06 runs from 04:00 UTC (01:00 at UTC-3: 00:00 never
        // happens) to 03:00 UTC on the 7th: 23 hours.
        ("2026-09-06T03:59:59Z", "2026-09-05", 23, 1, 3_000),
        ("2026-09-06T04:00:00Z", "2026-09-06", 1, 2, 1_000),
        ("2026-09-06T20:00:00Z", "2026-09-06", 17, 1, 1_700),
        ("2026-09-07T02:59:59Z", "2026-09-06", 23, 1, 2_300),
        ("2026-09-07T03:00:00Z", "2026-09-07", 0, 1, 999),
    ];
    let sales: Vec<_> =
        cases.iter().map(|(at, _, _, quantity, price)| sale(vendor, utc(at), *quantity, *price)).collect();
    let mut expected: BTreeMap<(NaiveDate, i16), (i64, i64, i64)> = BTreeMap::new();
    for (_, day, hour, quantity, price) in cases {
        let figures = expected.entry((date(day), hour)).or_default();
        *figures = (figures.0 + 1, figures.1 + i64::from(quantity), figures.2 + i64::from(quantity) * price);
    }
    let service = start(&settings);

    // Act: every sale, then the same sales again (a replay) in the same burst.
    let mut with_replay = sales.clone();
    with_replay.extend(sales.iter().cloned());
    produce_sales(&settings, &with_replay).await;
    let end = sales_end_offsets(&settings);
    wait_until_accounting_read(&settings, &end, Duration::from_secs(60)).await;
    service.stop().await;

    // Assert: every hour as sold, each sale once.
    let rows = daily_rows(&pool, vendor).await;
    assert_eq!(rows, expected);
    assert_eq!(rows[&(date("2026-04-04"), 23)], (5, 8, 7_900), "both 23:00 hours are one row");
    assert_eq!(day_total(&rows, date("2026-04-04")), (7, 11, 12_900), "the 25-hour day holds all of its sales");
    assert_eq!(day_total(&rows, date("2026-09-06")), (3, 4, 6_000), "the 23-hour day");
    assert!(!rows.contains_key(&(date("2026-09-06"), 0)), "2026-09-06 has no hour 0");
    assert_eq!(total_sales(&pool, &[vendor]).await, cases.len() as i64, "the weeks count the same sales");
}

/// Whether accounting's summary mark of `group` exists (its first pass with
/// daily summaries on has run).
async fn summary_mark_set(pool: &PgPool, group: &str) -> bool {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }
    let mut conn = pool.get().await.expect("connection");
    diesel::sql_query("SELECT count(*) AS count FROM accounting_watermarks WHERE consumer_group = $1 AND topic = $2")
        .bind::<diesel::sql_types::Text, _>(group)
        .bind::<diesel::sql_types::Text, _>(summary::MARK)
        .get_result::<Count>(&mut conn)
        .await
        .expect("query accounting_watermarks")
        .count
        > 0
}

/// The daily-summary email requests on the topic since `mark`.
async fn summary_emails(settings: &mamochi_common::Settings, mark: &[(i32, i64)]) -> Vec<EmailRequested> {
    read_topic(settings, &topics::EMAIL_REQUESTS, mark)
        .await
        .into_iter()
        .filter(|email: &EmailRequested| email.category == "daily_summary")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_vendor_gets_one_summary_email_per_day_they_sold_in_once_the_day_is_over() {
    let _serial = serial().await;
    // Arrange: platform time 15:00 on Wednesday 2026-10-14 in Santiago
    // (UTC-3), one hour of grace, summaries on. Ana and Beto are members; a
    // third vendor without membership moves sale time forward.
    let mut settings = settings(utc("2026-10-14T18:00:00Z"), 1.0, 3600);
    settings.accounting.daily_summary = true;
    let pool = pool(&settings);
    let group = settings.kafka.group(mamochi_accounting::GROUP);
    let (ana, beto, mover) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let ana_email = format!("ana-{}@example.cl", ana.simple());
    let beto_email = format!("beto-{}@example.cl", beto.simple());
    add_member(&pool, ana, "Ana Rojas", &ana_email, utc("2026-10-01T12:00:00Z")).await;
    add_member(&pool, beto, "Beto Díaz", &beto_email, utc("2026-10-01T12:00:00Z")).await;
    let emails_mark = end_offsets(&settings, &topics::EMAIL_REQUESTS);
    let service = start(&settings);
    eventually(Duration::from_secs(60), "the first pass set the summary mark", || async {
        summary_mark_set(&pool, &group).await.then_some(())
    })
    .await;

    // Act 1: the 14th's sales, then a sale at 02:00 on the 15th, after the
    // 14th's end (03:00 UTC) plus the grace hour: the 14th is due.
    produce_sales(
        &settings,
        &[
            sale(ana, utc("2026-10-14T13:15:00Z"), 2, 1_500),  // 10:15 local
            sale(ana, utc("2026-10-14T13:45:00Z"), 1, 1_000),  // 10:45
            sale(ana, utc("2026-10-14T19:20:00Z"), 1, 2_000),  // 16:20
            sale(beto, utc("2026-10-15T02:59:00Z"), 3, 1_000), // 23:59 on the 14th
        ],
    )
    .await;
    // Only once those are in the log: a sale reaching Kafka after a sale
    // of a day later than its own day plus grace may miss its summary.
    produce_sales(&settings, &[sale(mover, utc("2026-10-15T05:00:00Z"), 1, 500)]).await;
    let ana_14 = summary::email_message_id(ana, date("2026-10-14"));
    let beto_14 = summary::email_message_id(beto, date("2026-10-14"));
    eventually(Duration::from_secs(60), "the 14th's summaries", || async {
        let ids: Vec<Uuid> = summary_emails(&settings, &emails_mark).await.iter().map(|e| e.message_id).collect();
        (ids.contains(&ana_14) && ids.contains(&beto_14)).then_some(())
    })
    .await;

    // Act 2: a restarted instance; Beto sells on the 15th and sale time moves
    // past the 15th, which is then summarised too.
    service.stop().await;
    let service = start(&settings);
    produce_sales(&settings, &[sale(beto, utc("2026-10-15T14:00:00Z"), 1, 1_200)]).await;
    produce_sales(&settings, &[sale(mover, utc("2026-10-16T05:00:00Z"), 1, 500)]).await;
    let beto_15 = summary::email_message_id(beto, date("2026-10-15"));
    eventually(Duration::from_secs(60), "Beto's summary of the 15th", || async {
        summary_emails(&settings, &emails_mark).await.iter().any(|e| e.message_id == beto_15).then_some(())
    })
    .await;
    service.stop().await;

    // Assert: one email per vendor and day (the 15th's came after the
    // 14th's, so any repeat of the 14th's would be on the topic by now).
    let emails = summary_emails(&settings, &emails_mark).await;
    let ours: Vec<&EmailRequested> = emails.iter().filter(|e| e.to == ana_email || e.to == beto_email).collect();
    assert_eq!(ours.len(), 3, "{ours:#?}");
    let ana_mail = ours.iter().find(|e| e.message_id == ana_14).expect("Ana's summary");
    assert_eq!(ana_mail.to, ana_email);
    assert_eq!(ana_mail.subject, "MAMOCHI: resumen del día 2026-10-14");
    for line in [
        "Número de ventas: 3\n",
        "Porciones vendidas: 4\n",
        "Ganancias: $6.000\n",
        "Ticket promedio: $2.000\n",
        "Hora con más ventas: 10:00\n",
    ] {
        assert!(ana_mail.body_text.contains(line), "{line}: {}", ana_mail.body_text);
    }
    let beto_mail = ours.iter().find(|e| e.message_id == beto_14).expect("Beto's summary");
    assert!(beto_mail.body_text.contains("Ganancias: $3.000\n"), "{}", beto_mail.body_text);
    assert!(beto_mail.body_text.contains("Hora con más ventas: 23:00\n"), "{}", beto_mail.body_text);
    let beto_next = ours.iter().find(|e| e.message_id == beto_15).expect("Beto's 15th");
    assert!(beto_next.body_text.contains("Ganancias: $1.200\n"), "{}", beto_next.body_text);
    assert!(emails.iter().all(|e| e.category == "daily_summary"));
}
