//! Daily figures: each vendor's sales, units and earnings per local day and
//! hour in America/Santiago (`daily_sales`), written by the same transaction
//! that counts the sales into their weeks ([`crate::store`]).
//!
//! Guarantees: a sale is in its day and hour exactly once, because it is
//! added only when the batch's dedupe insert saw it for the first time and
//! that insert, the weekly totals and this upsert commit together. A batch is
//! summed in memory first and written in one multi-row upsert, rows in key
//! order (two instances never lock them in opposite orders). The day and
//! hour are those of `occurred_at` ([`mamochi_rules::day`]): a late sale,
//! counted in a later week, still counts in the day it happened. Sums
//! saturate at `i64::MAX` instead of failing the batch.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use diesel::sql_types::{Array, BigInt, Date, SmallInt};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use mamochi_rules::day::local_date_hour;
use uuid::Uuid;

use crate::sale::SaleFacts;

/// A vendor's local date and hour (0–23).
pub type HourKey = (Uuid, NaiveDate, i16);

/// Sales, units and earnings of one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourFigures {
    pub sales: i64,
    pub units: i64,
    pub earnings_clp: i64,
}

/// Sums `sales` per vendor, local date and hour.
pub fn aggregate<'s>(sales: impl IntoIterator<Item = &'s SaleFacts>) -> BTreeMap<HourKey, HourFigures> {
    let mut hours: BTreeMap<HourKey, HourFigures> = BTreeMap::new();
    for sale in sales {
        let (date, hour) = local_date_hour(sale.occurred_at);
        // Hours are 0..=23, so the conversion cannot fail.
        let figures = hours.entry((sale.vendor_id, date, i16::try_from(hour).unwrap_or(23))).or_default();
        figures.sales = figures.sales.saturating_add(1);
        figures.units = figures.units.saturating_add(sale.quantity);
        figures.earnings_clp = figures.earnings_clp.saturating_add(sale.total_clp);
    }
    hours
}

/// Adds `sales` to their vendors' days and hours in one statement, inside the
/// caller's transaction.
pub async fn add<'s>(
    conn: &mut AsyncPgConnection,
    sales: impl IntoIterator<Item = &'s SaleFacts>,
) -> Result<(), diesel::result::Error> {
    let hours = aggregate(sales);
    if hours.is_empty() {
        return Ok(());
    }
    let vendors: Vec<Uuid> = hours.keys().map(|(vendor, _, _)| *vendor).collect();
    let dates: Vec<NaiveDate> = hours.keys().map(|(_, date, _)| *date).collect();
    let hour_numbers: Vec<i16> = hours.keys().map(|(_, _, hour)| *hour).collect();
    let sales: Vec<i64> = hours.values().map(|figures| figures.sales).collect();
    let units: Vec<i64> = hours.values().map(|figures| figures.units).collect();
    let earnings: Vec<i64> = hours.values().map(|figures| figures.earnings_clp).collect();
    diesel::sql_query(
        "INSERT INTO daily_sales (vendor_id, local_date, local_hour, sales, units, earnings_clp) \
         SELECT * FROM unnest($1::uuid[], $2::date[], $3::int2[], $4::int8[], $5::int8[], $6::int8[]) \
         ON CONFLICT (vendor_id, local_date, local_hour) DO UPDATE SET \
           sales = LEAST(daily_sales.sales::numeric + EXCLUDED.sales, 9223372036854775807)::int8, \
           units = LEAST(daily_sales.units::numeric + EXCLUDED.units, 9223372036854775807)::int8, \
           earnings_clp = LEAST(daily_sales.earnings_clp::numeric + EXCLUDED.earnings_clp, 9223372036854775807)::int8",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(vendors)
    .bind::<Array<Date>, _>(dates)
    .bind::<Array<SmallInt>, _>(hour_numbers)
    .bind::<Array<BigInt>, _>(sales)
    .bind::<Array<BigInt>, _>(units)
    .bind::<Array<BigInt>, _>(earnings)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn sale(vendor: u128, at: &str, quantity: i64, price: i64) -> SaleFacts {
        let at = DateTime::parse_from_rfc3339(at).expect("rfc3339").with_timezone(&Utc);
        SaleFacts {
            sale_id: Uuid::new_v4(),
            vendor_id: Uuid::from_u128(vendor),
            quantity,
            total_clp: quantity * price,
            occurred_at: at,
            recorded_at: at,
            read_at: None,
        }
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn a_batch_is_summed_per_vendor_local_day_and_hour() {
        let sales = [
            // Both 23:00 hours of 2026-04-04 (UTC-3, then UTC-4 after clocks go back).
            sale(1, "2026-04-05T02:10:00Z", 1, 1_000),
            sale(1, "2026-04-05T03:10:00Z", 2, 1_500),
            // The next local day's first minute, and the previous day's last.
            sale(1, "2026-04-05T04:00:00Z", 1, 700),
            sale(1, "2026-04-04T02:59:00Z", 3, 1_000),
            sale(2, "2026-04-05T02:30:00Z", 1, 900),
        ];
        let hours = aggregate(&sales);
        assert_eq!(hours.len(), 4);
        assert_eq!(
            hours[&(Uuid::from_u128(1), date("2026-04-04"), 23)],
            HourFigures { sales: 2, units: 3, earnings_clp: 4_000 }
        );
        assert_eq!(hours[&(Uuid::from_u128(1), date("2026-04-05"), 0)].earnings_clp, 700);
        assert_eq!(hours[&(Uuid::from_u128(1), date("2026-04-03"), 23)].units, 3);
        assert_eq!(hours[&(Uuid::from_u128(2), date("2026-04-04"), 23)].sales, 1);
    }

    #[test]
    fn sums_saturate_instead_of_wrapping() {
        let sales = [sale(1, "2026-11-18T15:00:00Z", 1, i64::MAX), sale(1, "2026-11-18T15:10:00Z", 1, 5)];
        let hours = aggregate(&sales);
        assert_eq!(hours[&(Uuid::from_u128(1), date("2026-11-18"), 12)].earnings_clp, i64::MAX);
    }
}
