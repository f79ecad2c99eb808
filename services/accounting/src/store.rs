//! The accounting service's database work on `processed_events`,
//! `weekly_sales`, `daily_sales`, `statements` and `accounting_watermarks`.
//! Each public function is one transaction.
//!
//! Guarantees:
//! - [`apply_sales_read_by`] counts each sale id at most once, ever: the
//!   multi-row dedupe insert, the new weekly totals, the sales' daily and
//!   hourly figures ([`crate::daily`]) and the read positions of the batch
//!   (one multi-row upsert into `accounting_watermarks`) commit together or
//!   not at all. The weekly rows it changes are locked
//!   (`SELECT … FOR UPDATE`) before they are read, so the closer can never
//!   close a week between our read and our write: a week is either closed
//!   before a sale is added (the sale is then late) or after (the statement
//!   includes it).
//! - A sale is late only when its own week, or a later week of the same
//!   vendor, is already closed; a week that is over by the clock but not yet
//!   closed (the closer waits for every partition, [`crate::horizon`]) still
//!   takes its own sales.
//! - A partition's watermark only moves forward (`GREATEST` of the stored and
//!   the new event time and offset).
//! - [`close_week`] sets `closed_at` and inserts the week's one statement in
//!   the same transaction, under the same row lock; closing twice is a no-op,
//!   so any number of accounting instances may close the same week.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use mamochi_common::dedupe::first_times;
use mamochi_common::schema::{members, processed_events, statements, weekly_sales};
use mamochi_events::topics;
use uuid::Uuid;

use crate::daily;
use crate::sale::{SaleFacts, Totals};
use crate::statement::{self, Figures};
use crate::week::Week;

/// This service's name in `processed_events`.
pub const CONSUMER: &str = "accounting";

/// Why a database step failed; every variant is worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("connection pool: {0}")]
    Pool(String),
    #[error("week {week} of vendor {vendor} was closed while a late sale was being moved into it")]
    ClosedUnderUs { vendor: Uuid, week: String },
}

/// A sale counted by [`apply_sales`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub sale_id: Uuid,
    pub vendor_id: Uuid,
    /// The week it was counted in.
    pub iso_week: String,
    /// Its own week was closed: it was counted in the vendor's open week.
    pub late: bool,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// What one [`apply_sales`] transaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub counted: Vec<Counted>,
    /// Sales applied before (redeliveries, or repeated within the batch).
    pub duplicates: usize,
    /// Sales that would overflow their week's totals: not counted, not
    /// marked processed; the caller parks them.
    pub overflowed: Vec<Uuid>,
}

/// Whether `week` is past its end plus the grace period at `now`.
pub fn is_due(week: &Week, now: DateTime<Utc>, grace: Duration) -> bool {
    week.end + grace <= now
}

type Key = (Uuid, String);

#[derive(QueryableByName)]
struct LockedRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    vendor_id: Uuid,
    #[diesel(sql_type = Text)]
    iso_week: String,
    #[diesel(sql_type = BigInt)]
    sales_count: i64,
    #[diesel(sql_type = BigInt)]
    units: i64,
    #[diesel(sql_type = BigInt)]
    earnings_clp: i64,
    #[diesel(sql_type = Bool)]
    closed: bool,
}

#[derive(QueryableByName)]
struct LastClosedRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    vendor_id: Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    last_closed: Option<String>,
}

#[derive(QueryableByName)]
struct MemberWeeksRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    member_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    last_closed: Option<String>,
}

/// Counts `sales` in one transaction without recording read positions (for
/// callers outside a consumer group, such as the bench). `_grace` is no
/// longer used: lateness is decided by closed weeks alone (module doc).
pub async fn apply_sales(
    conn: &mut AsyncPgConnection,
    sales: &[SaleFacts],
    now: DateTime<Utc>,
    _grace: Duration,
) -> Result<BatchOutcome, StoreError> {
    apply(conn, None, sales, now).await
}

/// Counts `sales` in one transaction and, for the sales that say where they
/// were read, moves `group`'s watermark of each sales partition in the same
/// transaction. `now` is platform time: a late sale is counted in the
/// vendor's week containing it, or the week after their latest closed one.
pub async fn apply_sales_read_by(
    conn: &mut AsyncPgConnection,
    group: &str,
    sales: &[SaleFacts],
    now: DateTime<Utc>,
) -> Result<BatchOutcome, StoreError> {
    apply(conn, Some(group), sales, now).await
}

async fn apply(
    conn: &mut AsyncPgConnection,
    group: Option<&str>,
    sales: &[SaleFacts],
    now: DateTime<Utc>,
) -> Result<BatchOutcome, StoreError> {
    if sales.is_empty() {
        return Ok(BatchOutcome::default());
    }
    conn.transaction::<_, StoreError, _>(async |conn| {
        let (fresh, duplicates) = claim_first_time(conn, sales).await?;
        let targets = lock_target_weeks(conn, &fresh, now).await?;
        let Tally { changed, counted, overflowed } = targets.tally(&fresh)?;
        write_totals(conn, &changed).await?;
        // The same sales, by the day and hour they happened (crate::daily).
        daily::add(conn, fresh.iter().map(|(sale, _)| *sale).filter(|sale| !overflowed.contains(&sale.sale_id)))
            .await?;
        if !overflowed.is_empty() {
            // Not counted, so not marked processed (`BatchOutcome::overflowed`).
            diesel::delete(
                processed_events::table
                    .filter(processed_events::consumer.eq(CONSUMER))
                    .filter(processed_events::event_id.eq_any(&overflowed)),
            )
            .execute(conn)
            .await?;
        }
        if let Some(group) = group {
            record_watermarks(conn, group, sales).await?;
        }
        Ok(BatchOutcome { counted, duplicates, overflowed })
    })
    .await
}

/// Marks `sales` processed in one multi-row insert and returns the ones seen
/// for the first time, each with its own week, and how many were not (seen
/// before, or repeated within the batch: new only the first time).
async fn claim_first_time<'s>(
    conn: &mut AsyncPgConnection,
    sales: &'s [SaleFacts],
) -> Result<(Vec<(&'s SaleFacts, Week)>, usize), StoreError> {
    let ids: Vec<Uuid> = sales.iter().map(|sale| sale.sale_id).collect();
    let mut first_time = first_times(conn, CONSUMER, &ids).await?;
    let mut duplicates = 0;
    let mut fresh = Vec::with_capacity(first_time.len());
    for sale in sales {
        if first_time.remove(&sale.sale_id) {
            fresh.push((sale, Week::containing(sale.occurred_at)));
        } else {
            duplicates += 1;
        }
    }
    Ok((fresh, duplicates))
}

/// The locked weekly rows a batch's fresh sales may be counted in, and the
/// open week of each vendor with a late sale.
struct Targets {
    rows: HashMap<Key, LockedRow>,
    open_weeks: BTreeMap<Uuid, Week>,
}

/// What counting a batch changes: new totals per (vendor, week), the sales
/// counted, and those that would overflow their week's totals.
struct Tally {
    changed: BTreeMap<Key, Totals>,
    counted: Vec<Counted>,
    overflowed: Vec<Uuid>,
}

/// Locks the rows of the sales' own weeks (created unless that week or a
/// later one of the vendor is closed) and, for vendors with a late sale,
/// the row of their current open week (created if missing).
async fn lock_target_weeks(
    conn: &mut AsyncPgConnection,
    fresh: &[(&SaleFacts, Week)],
    now: DateTime<Utc>,
) -> Result<Targets, StoreError> {
    let own_weeks: BTreeMap<Key, &Week> =
        fresh.iter().map(|(sale, week)| ((sale.vendor_id, week.label.clone()), week)).collect();
    let own: Vec<(Uuid, &Week)> = own_weeks.iter().map(|((vendor, _), week)| (*vendor, *week)).collect();
    insert_week_rows(conn, &own, INSERT_WEEKS_UNLESS_CLOSED_AFTER).await?;
    let mut targets = Targets { rows: lock_rows(conn, own_weeks.keys()).await?, open_weeks: BTreeMap::new() };
    let late_vendors: BTreeSet<Uuid> = fresh
        .iter()
        .filter(|(sale, week)| !targets.is_open(&(sale.vendor_id, week.label.clone())))
        .map(|(sale, _)| sale.vendor_id)
        .collect();
    if late_vendors.is_empty() {
        return Ok(targets);
    }
    let open_weeks = current_open_weeks(conn, &late_vendors, now).await?;
    let weeks: Vec<(Uuid, &Week)> = open_weeks.iter().map(|(vendor, week)| (*vendor, week)).collect();
    insert_week_rows(conn, &weeks, INSERT_MISSING_WEEKS).await?;
    let keys: BTreeSet<Key> = open_weeks.iter().map(|(vendor, week)| (*vendor, week.label.clone())).collect();
    let locked = lock_rows(conn, keys.iter()).await?;
    if let Some(((vendor, week), _)) = locked.iter().find(|(_, row)| row.closed) {
        return Err(StoreError::ClosedUnderUs { vendor: *vendor, week: week.clone() });
    }
    targets.rows.extend(locked);
    targets.open_weeks = open_weeks;
    Ok(targets)
}

impl Targets {
    fn is_open(&self, key: &Key) -> bool {
        self.rows.get(key).is_some_and(|row| !row.closed)
    }

    /// Counts each fresh sale in its own week if that is open, else in its
    /// vendor's open week (late); the locked rows are the starting totals.
    fn tally(&self, fresh: &[(&SaleFacts, Week)]) -> Result<Tally, StoreError> {
        let mut tally =
            Tally { changed: BTreeMap::new(), counted: Vec::with_capacity(fresh.len()), overflowed: Vec::new() };
        for (sale, week) in fresh {
            let own = (sale.vendor_id, week.label.clone());
            let late = !self.is_open(&own);
            let key = match (late, self.open_weeks.get(&sale.vendor_id)) {
                (false, _) => own,
                (true, Some(open)) => (sale.vendor_id, open.label.clone()),
                (true, None) => {
                    return Err(StoreError::ClosedUnderUs { vendor: sale.vendor_id, week: week.label.clone() })
                }
            };
            let before = tally
                .changed
                .get(&key)
                .copied()
                .or_else(|| self.rows.get(&key).map(LockedRow::totals))
                .unwrap_or_default();
            match before.plus(sale) {
                Some(after) => {
                    tally.counted.push(Counted {
                        sale_id: sale.sale_id,
                        vendor_id: sale.vendor_id,
                        iso_week: key.1.clone(),
                        late,
                        occurred_at: sale.occurred_at,
                        recorded_at: sale.recorded_at,
                    });
                    tally.changed.insert(key, after);
                }
                None => tally.overflowed.push(sale.sale_id),
            }
        }
        Ok(tally)
    }
}

/// One partition's watermark as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct StoredWatermark {
    #[diesel(sql_type = Integer)]
    pub partition: i32,
    /// Latest sale time applied from the partition.
    #[diesel(sql_type = Timestamptz)]
    pub event_time: DateTime<Utc>,
    /// Offset after the last sale applied from the partition.
    #[diesel(sql_type = BigInt)]
    pub next_offset: i64,
}

/// Moves `group`'s watermark of every partition `sales` were read from, in
/// one statement (a batch spans few partitions; rows sorted by partition so
/// two instances never lock them in opposite orders).
async fn record_watermarks(conn: &mut AsyncPgConnection, group: &str, sales: &[SaleFacts]) -> Result<(), StoreError> {
    let mut latest: BTreeMap<i32, (DateTime<Utc>, i64)> = BTreeMap::new();
    for sale in sales {
        let Some(read_at) = sale.read_at else { continue };
        let next = read_at.offset.saturating_add(1);
        latest
            .entry(read_at.partition)
            .and_modify(|(time, offset)| {
                *time = (*time).max(sale.occurred_at);
                *offset = (*offset).max(next);
            })
            .or_insert((sale.occurred_at, next));
    }
    if latest.is_empty() {
        return Ok(());
    }
    let partitions: Vec<i32> = latest.keys().copied().collect();
    let times: Vec<DateTime<Utc>> = latest.values().map(|(time, _)| *time).collect();
    let offsets: Vec<i64> = latest.values().map(|(_, offset)| *offset).collect();
    diesel::sql_query(
        "INSERT INTO accounting_watermarks (consumer_group, topic, partition, event_time, next_offset) \
         SELECT $1, $2, p, t, o FROM unnest($3::int4[], $4::timestamptz[], $5::int8[]) AS v(p, t, o) \
         ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET \
           event_time = GREATEST(accounting_watermarks.event_time, EXCLUDED.event_time), \
           next_offset = GREATEST(accounting_watermarks.next_offset, EXCLUDED.next_offset), \
           updated_at = now()",
    )
    .bind::<Text, _>(group)
    .bind::<Text, _>(topics::SALES.name())
    .bind::<Array<Integer>, _>(partitions)
    .bind::<Array<Timestamptz>, _>(times)
    .bind::<Array<BigInt>, _>(offsets)
    .execute(conn)
    .await?;
    Ok(())
}

/// `group`'s watermark of every sales partition it has recorded one for.
pub async fn watermarks(conn: &mut AsyncPgConnection, group: &str) -> Result<Vec<StoredWatermark>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT partition, event_time, next_offset FROM accounting_watermarks \
         WHERE consumer_group = $1 AND topic = $2 ORDER BY partition",
    )
    .bind::<Text, _>(group)
    .bind::<Text, _>(topics::SALES.name())
    .load::<StoredWatermark>(conn)
    .await?)
}

impl LockedRow {
    fn totals(&self) -> Totals {
        Totals { sales_count: self.sales_count, units: self.units, earnings_clp: self.earnings_clp }
    }
}

/// Inserts an empty row for every week that has none yet.
const INSERT_MISSING_WEEKS: &str = "INSERT INTO weekly_sales (vendor_id, iso_week, week_start, week_end) \
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[]) \
     ON CONFLICT DO NOTHING";

/// Like [`INSERT_MISSING_WEEKS`], except where the vendor already has that
/// week or a later one closed (a sale for such a week is late and must not
/// reopen the past).
const INSERT_WEEKS_UNLESS_CLOSED_AFTER: &str = "INSERT INTO weekly_sales (vendor_id, iso_week, week_start, week_end) \
     SELECT v.vendor_id, v.iso_week, v.week_start, v.week_end \
     FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[]) \
       AS v(vendor_id, iso_week, week_start, week_end) \
     WHERE NOT EXISTS (SELECT 1 FROM weekly_sales w \
                        WHERE w.vendor_id = v.vendor_id AND w.closed_at IS NOT NULL \
                          AND w.week_start >= v.week_start) \
     ON CONFLICT DO NOTHING";

/// Inserts empty rows for `weeks` with `insert` (one of the two statements
/// above: they take vendors, labels, starts and ends as four arrays).
async fn insert_week_rows(
    conn: &mut AsyncPgConnection,
    weeks: &[(Uuid, &Week)],
    insert: &'static str,
) -> Result<(), StoreError> {
    if weeks.is_empty() {
        return Ok(());
    }
    let vendors: Vec<Uuid> = weeks.iter().map(|(vendor, _)| *vendor).collect();
    let labels: Vec<&str> = weeks.iter().map(|(_, week)| week.label.as_str()).collect();
    let starts: Vec<DateTime<Utc>> = weeks.iter().map(|(_, week)| week.start).collect();
    let ends: Vec<DateTime<Utc>> = weeks.iter().map(|(_, week)| week.end).collect();
    diesel::sql_query(insert)
        .bind::<Array<diesel::sql_types::Uuid>, _>(vendors)
        .bind::<Array<Text>, _>(labels)
        .bind::<Array<Timestamptz>, _>(starts)
        .bind::<Array<Timestamptz>, _>(ends)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks the existing rows among `keys`, in key order, and reads them.
async fn lock_rows<'k>(
    conn: &mut AsyncPgConnection,
    keys: impl Iterator<Item = &'k Key>,
) -> Result<HashMap<Key, LockedRow>, StoreError> {
    let (vendors, labels): (Vec<Uuid>, Vec<&str>) = keys.map(|(vendor, label)| (*vendor, label.as_str())).unzip();
    if vendors.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = diesel::sql_query(
        "SELECT w.vendor_id, w.iso_week, w.sales_count, w.units, w.earnings_clp, (w.closed_at IS NOT NULL) AS closed \
         FROM weekly_sales w \
         JOIN unnest($1::uuid[], $2::text[]) AS k(vendor_id, iso_week) \
           ON w.vendor_id = k.vendor_id AND w.iso_week = k.iso_week \
         ORDER BY w.vendor_id, w.iso_week \
         FOR UPDATE OF w",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(vendors)
    .bind::<Array<Text>, _>(labels)
    .load::<LockedRow>(conn)
    .await?;
    Ok(rows.into_iter().map(|row| ((row.vendor_id, row.iso_week.clone()), row)).collect())
}

/// Each vendor's current open week: the week containing `now`, or the week
/// after the vendor's latest closed week if that is later.
async fn current_open_weeks(
    conn: &mut AsyncPgConnection,
    vendors: &BTreeSet<Uuid>,
    now: DateTime<Utc>,
) -> Result<BTreeMap<Uuid, Week>, StoreError> {
    let list: Vec<Uuid> = vendors.iter().copied().collect();
    let last_closed: HashMap<Uuid, Option<String>> = diesel::sql_query(
        "SELECT vendor_id, max(iso_week) AS last_closed FROM weekly_sales \
         WHERE vendor_id = ANY($1) AND closed_at IS NOT NULL GROUP BY vendor_id",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(list)
    .load::<LastClosedRow>(conn)
    .await?
    .into_iter()
    .map(|row| (row.vendor_id, row.last_closed))
    .collect();
    let current = Week::containing(now);
    Ok(vendors
        .iter()
        .map(|vendor| {
            let last_closed = last_closed.get(vendor).and_then(Option::as_deref);
            (*vendor, first_open_week(last_closed, current.clone()))
        })
        .collect())
}

/// The first week a vendor may still count sales in: the week after
/// `last_closed` (its label), unless `earliest` is later.
fn first_open_week(last_closed: Option<&str>, earliest: Week) -> Week {
    match last_closed.and_then(Week::parse).map(|week| week.next()) {
        Some(next) if next.start > earliest.start => next,
        _ => earliest,
    }
}

/// Writes new totals for the locked rows, in one statement.
async fn write_totals(conn: &mut AsyncPgConnection, changed: &BTreeMap<Key, Totals>) -> Result<(), StoreError> {
    if changed.is_empty() {
        return Ok(());
    }
    let vendors: Vec<Uuid> = changed.keys().map(|(vendor, _)| *vendor).collect();
    let labels: Vec<&str> = changed.keys().map(|(_, label)| label.as_str()).collect();
    let counts: Vec<i64> = changed.values().map(|totals| totals.sales_count).collect();
    let units: Vec<i64> = changed.values().map(|totals| totals.units).collect();
    let earnings: Vec<i64> = changed.values().map(|totals| totals.earnings_clp).collect();
    diesel::sql_query(
        "UPDATE weekly_sales w \
         SET sales_count = v.sales_count, units = v.units, earnings_clp = v.earnings_clp \
         FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::int8[]) \
           AS v(vendor_id, iso_week, sales_count, units, earnings_clp) \
         WHERE w.vendor_id = v.vendor_id AND w.iso_week = v.iso_week",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(vendors)
    .bind::<Array<Text>, _>(labels)
    .bind::<Array<BigInt>, _>(counts)
    .bind::<Array<BigInt>, _>(units)
    .bind::<Array<BigInt>, _>(earnings)
    .execute(conn)
    .await?;
    Ok(())
}

/// A (vendor, week) the closer must close.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Closing {
    pub vendor_id: Uuid,
    pub week: Week,
}

/// Every (vendor, week) due and not closed, up to `last_due`: weeks with
/// sales, and every member's weeks since they joined even without sales
/// (at most `max_weeks` per member per call). Sorted by vendor, then time,
/// so a vendor's weeks close in order.
pub async fn due_closings(
    conn: &mut AsyncPgConnection,
    last_due: &Week,
    max_weeks: usize,
) -> Result<Vec<Closing>, StoreError> {
    let mut closings: BTreeSet<(Uuid, DateTime<Utc>, String)> = BTreeSet::new();

    let open_rows: Vec<(Uuid, String)> = weekly_sales::table
        .filter(weekly_sales::closed_at.is_null())
        .filter(weekly_sales::week_end.le(last_due.end))
        .select((weekly_sales::vendor_id, weekly_sales::iso_week))
        .load(conn)
        .await?;
    for (vendor, label) in open_rows {
        match Week::parse(&label) {
            Some(week) => {
                closings.insert((vendor, week.start, week.label));
            }
            None => tracing::warn!(%vendor, %label, "weekly row with an unreadable week label; left open"),
        }
    }

    // Members who joined before the last due week ended, with their latest closed week.
    let members: Vec<MemberWeeksRow> = diesel::sql_query(
        "SELECT m.member_id, m.created_at, \
                (SELECT max(w.iso_week) FROM weekly_sales w \
                  WHERE w.vendor_id = m.member_id AND w.closed_at IS NOT NULL) AS last_closed \
         FROM members m WHERE m.created_at < $1",
    )
    .bind::<Timestamptz, _>(last_due.end)
    .load(conn)
    .await?;
    for member in members {
        let mut week = first_open_week(member.last_closed.as_deref(), Week::containing(member.created_at));
        let mut taken = 0;
        while week.end <= last_due.end && taken < max_weeks {
            closings.insert((member.member_id, week.start, week.label.clone()));
            week = week.next();
            taken += 1;
        }
    }

    Ok(closings
        .into_iter()
        .filter_map(|(vendor_id, _, label)| Week::parse(&label).map(|week| Closing { vendor_id, week }))
        .collect())
}

/// Closes one vendor's week: creates its row if it has none (no sales),
/// sets `closed_at` and stores its statement. `None` if it was closed already.
pub async fn close_week(
    conn: &mut AsyncPgConnection,
    closing: &Closing,
    issued_at: DateTime<Utc>,
) -> Result<Option<Figures>, StoreError> {
    let vendor = closing.vendor_id;
    let week = &closing.week;
    conn.transaction::<_, StoreError, _>(async |conn| {
        insert_week_rows(conn, &[(vendor, week)], INSERT_MISSING_WEEKS).await?;
        let (sales_count, units, earnings_clp, closed_at): (i64, i64, i64, Option<DateTime<Utc>>) = weekly_sales::table
            .find((vendor, &week.label))
            .select((
                weekly_sales::sales_count,
                weekly_sales::units,
                weekly_sales::earnings_clp,
                weekly_sales::closed_at,
            ))
            .for_update()
            .first(conn)
            .await?;
        if closed_at.is_some() {
            return Ok(None);
        }
        diesel::update(weekly_sales::table.find((vendor, &week.label)))
            .set(weekly_sales::closed_at.eq(issued_at))
            .execute(conn)
            .await?;
        let figures = Figures {
            sales_count,
            units,
            earnings_clp,
            average_ticket_clp: statement::average_ticket(earnings_clp, sales_count),
        };
        insert_statement(conn, vendor, &week.label, &figures, issued_at).await?;
        Ok(Some(figures))
    })
    .await
}

/// Stores the statement of `vendor`'s week `iso_week`; a second one for the
/// same week is ignored (the first stands).
async fn insert_statement(
    conn: &mut AsyncPgConnection,
    vendor: Uuid,
    iso_week: &str,
    figures: &Figures,
    issued_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::insert_into(statements::table)
        .values((
            statements::statement_id.eq(statement::statement_id(vendor, iso_week)),
            statements::vendor_id.eq(vendor),
            statements::iso_week.eq(iso_week),
            statements::sales_count.eq(figures.sales_count),
            statements::units.eq(figures.units),
            statements::earnings_clp.eq(figures.earnings_clp),
            statements::average_ticket_clp.eq(figures.average_ticket_clp),
            statements::issued_at.eq(issued_at),
        ))
        .on_conflict((statements::vendor_id, statements::iso_week))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// A stored statement not yet published, with its member's address if known.
#[derive(Debug, Clone, Queryable)]
pub struct PendingStatement {
    pub statement_id: Uuid,
    pub vendor_id: Uuid,
    pub iso_week: String,
    pub sales_count: i64,
    pub units: i64,
    pub earnings_clp: i64,
    pub average_ticket_clp: i64,
    pub issued_at: DateTime<Utc>,
    pub email: Option<String>,
    pub full_name: Option<String>,
}

/// Up to `limit` unpublished statements, oldest first.
pub async fn pending_statements(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<PendingStatement>, StoreError> {
    Ok(statements::table
        .left_join(members::table.on(members::member_id.eq(statements::vendor_id)))
        .filter(statements::published_at.is_null())
        .order((statements::issued_at, statements::statement_id))
        .limit(limit)
        .select((
            statements::statement_id,
            statements::vendor_id,
            statements::iso_week,
            statements::sales_count,
            statements::units,
            statements::earnings_clp,
            statements::average_ticket_clp,
            statements::issued_at,
            members::email.nullable(),
            members::full_name.nullable(),
        ))
        .load(conn)
        .await?)
}
