//! `GET /v1/me/stats/daily?date=YYYY-MM-DD`: a vendor's figures for one local
//! day in America/Santiago (sales, units, earnings, average ticket, busiest
//! hour, and each hour they sold in), read from accounting's `daily_sales`.
//!
//! Guarantees: the figures are accounting's, which counts every sale once in
//! the day and hour it happened ([`mamochi_rules::day`]); a day with 25 hours
//! (clocks go back) has both of its 23:00 hours in hour 23, a day with 23
//! hours has no hour 0. A date with no sales answers zeros; a missing,
//! malformed or unreal date is 422 naming `date`. The sums saturate rather
//! than overflow.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use mamochi_common::db::PgPool;
use mamochi_rules::day::Day;
use mamochi_rules::money::average_ticket;
use mamochi_rules::week::ZONE;
use serde_json::{json, Value};

use crate::auth::Vendor;
use crate::body::FieldError;
use crate::routes::me::MeError;
use crate::store::accounting::HourRow;
use crate::store::{self};

/// The figures of `day` from its hours with sales (any order).
pub fn daily_figures(day: &Day, hours: &[HourRow]) -> Value {
    let mut hours: Vec<&HourRow> = hours.iter().filter(|hour| hour.sales > 0).collect();
    hours.sort_by_key(|hour| hour.local_hour);
    let sum = |field: fn(&HourRow) -> i64| hours.iter().fold(0_i64, |total, hour| total.saturating_add(field(hour)));
    let (sales, units, earnings_clp) = (sum(|h| h.sales), sum(|h| h.units), sum(|h| h.earnings_clp));
    // Most sales; on a tie the earliest hour (the list is in hour order and
    // only a strictly greater count replaces the best so far).
    let busiest = hours.iter().fold(None::<&HourRow>, |best, hour| match best {
        Some(best) if best.sales >= hour.sales => Some(best),
        _ => Some(hour),
    });
    json!({
        "date": day.date.format("%Y-%m-%d").to_string(),
        "timezone": ZONE.name(),
        "sales": sales,
        "units": units,
        "earnings_clp": earnings_clp,
        "average_ticket_clp": average_ticket(earnings_clp, sales),
        "busiest_hour": busiest.map(|hour| format!("{:02}:00", hour.local_hour)),
        "hours": hours.iter().map(|hour| json!({
            "hour": hour.local_hour,
            "sales": hour.sales,
            "units": hour.units,
            "earnings_clp": hour.earnings_clp,
        })).collect::<Vec<_>>(),
    })
}

/// `GET /v1/me/stats/daily?date=YYYY-MM-DD`.
#[tracing::instrument(skip_all, fields(vendor_id = %vendor.vendor_id))]
pub async fn daily(
    vendor: Vendor,
    query: web::Query<HashMap<String, String>>,
    pool: web::Data<PgPool>,
) -> Result<HttpResponse, MeError> {
    let raw = query.get("date").ok_or_else(|| FieldError::missing("date"))?;
    let day = Day::parse(raw)
        .ok_or_else(|| FieldError::invalid("date", "must be a date that exists, written YYYY-MM-DD (2026-04-04)"))?;
    let hours = store::accounting::day_hours(&pool, vendor.vendor_id, day.date).await?;
    Ok(HttpResponse::Ok().json(daily_figures(&day, &hours)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(local_hour: i16, sales: i64, units: i64, earnings_clp: i64) -> HourRow {
        HourRow { local_hour, sales, units, earnings_clp }
    }

    #[test]
    fn the_figures_add_up_and_the_busiest_hour_is_the_earliest_of_a_tie() {
        let day = Day::parse("2026-04-04").expect("date");
        let figures = daily_figures(&day, &[hour(23, 3, 4, 4_000), hour(9, 1, 1, 1_000), hour(12, 3, 5, 5_001)]);
        assert_eq!(
            figures,
            json!({
                "date": "2026-04-04", "timezone": "America/Santiago",
                "sales": 7, "units": 10, "earnings_clp": 10_001, "average_ticket_clp": 1_429,
                "busiest_hour": "12:00",
                "hours": [
                    {"hour": 9, "sales": 1, "units": 1, "earnings_clp": 1_000},
                    {"hour": 12, "sales": 3, "units": 5, "earnings_clp": 5_001},
                    {"hour": 23, "sales": 3, "units": 4, "earnings_clp": 4_000},
                ],
            })
        );
    }

    #[test]
    fn a_day_without_sales_is_zeros_and_no_busiest_hour() {
        let day = Day::parse("2026-09-06").expect("date");
        let figures = daily_figures(&day, &[]);
        assert_eq!(figures["sales"], 0);
        assert_eq!(figures["average_ticket_clp"], 0);
        assert_eq!(figures["busiest_hour"], Value::Null);
        assert_eq!(figures["hours"], json!([]));
        assert_eq!(daily_figures(&day, &[hour(3, 0, 0, 0)])["hours"], json!([]), "an empty hour is not listed");
    }

    #[test]
    fn the_sums_saturate() {
        let day = Day::parse("2026-11-18").expect("date");
        let figures = daily_figures(&day, &[hour(1, 1, 1, i64::MAX), hour(2, 1, 1, 10)]);
        assert_eq!(figures["earnings_clp"], i64::MAX);
    }
}
