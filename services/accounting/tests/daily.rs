//! Daily figures on the real stack: sales produced to Kafka, counted by
//! accounting into `daily_sales` (America/Santiago day and hour), read back
//! over SQL, across both daylight-saving changes of 2026.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use diesel::sql_types::{BigInt, Date, SmallInt};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
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
