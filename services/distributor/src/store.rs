//! The distributor's SQL: the dedupe records, the locked cart rows, and the
//! members' contact details (read only; approval owns `members`).
//!
//! Every function runs on a connection inside the caller's transaction.
//! Carts are read with `SELECT … FOR UPDATE`, several at once always in
//! `vendor_id` order, so the sales path, the stock path (or two processes
//! during a rebalance) never interleave a read-modify-write of the same cart
//! and never deadlock on each other's carts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Integer, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use mamochi_common::schema::{carts, members, processed_events};
use uuid::Uuid;

use crate::derived::Recipient;
use crate::rules::Cart;

/// Dedupe consumer names in `processed_events`.
pub const SALES_CONSUMER: &str = "distributor";
pub const STOCK_CONSUMER: &str = "distributor-stock";

/// Why a cart could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("vendor {0} is not a member")]
    UnknownVendor(Uuid),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// A locked cart: what the rules see, plus its restock count (for the
/// published level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockedCart {
    pub cart: Cart,
    pub restocks: i32,
}

#[derive(QueryableByName)]
struct CartRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    vendor_id: Uuid,
    #[diesel(sql_type = Integer)]
    stock: i32,
    #[diesel(sql_type = Bool)]
    low_stock_alerted: bool,
    #[diesel(sql_type = Integer)]
    restocks: i32,
}

#[derive(QueryableByName)]
struct RecipientRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    member_id: Uuid,
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = Text)]
    full_name: String,
}

/// Undoes [`mamochi_common::dedupe::first_times`] for events that were refused, so they are not
/// recorded as applied.
pub async fn forget(conn: &mut AsyncPgConnection, consumer: &str, event_ids: &[Uuid]) -> QueryResult<()> {
    if event_ids.is_empty() {
        return Ok(());
    }
    diesel::delete(
        processed_events::table
            .filter(processed_events::consumer.eq(consumer))
            .filter(processed_events::event_id.eq_any(event_ids)),
    )
    .execute(conn)
    .await
    .map(drop)
}

/// Locks the carts of `vendor_ids` (in `vendor_id` order), creating a cart
/// with `initial_stock` for a member who has none yet (approval normally
/// creates it with the member). A vendor missing from the answer is not a
/// member.
pub async fn lock_carts(
    conn: &mut AsyncPgConnection,
    vendor_ids: &[Uuid],
    initial_stock: i32,
) -> QueryResult<HashMap<Uuid, LockedCart>> {
    let mut carts = select_for_update(conn, vendor_ids).await?;
    let missing: Vec<Uuid> = vendor_ids.iter().copied().filter(|vendor| !carts.contains_key(vendor)).collect();
    if missing.is_empty() {
        return Ok(carts);
    }
    let created = diesel::sql_query(
        "INSERT INTO carts (vendor_id, stock) \
         SELECT member_id, $2 FROM members WHERE member_id = ANY($1) \
         ON CONFLICT DO NOTHING",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(&missing)
    .bind::<Integer, _>(initial_stock.max(0))
    .execute(conn)
    .await?;
    if created > 0 {
        tracing::warn!(created, initial_stock, "members had no cart; created them");
    }
    carts.extend(select_for_update(conn, &missing).await?);
    Ok(carts)
}

async fn select_for_update(
    conn: &mut AsyncPgConnection,
    vendor_ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, LockedCart>> {
    if vendor_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = diesel::sql_query(
        "SELECT vendor_id, stock, low_stock_alerted, restocks FROM carts \
         WHERE vendor_id = ANY($1) ORDER BY vendor_id FOR UPDATE",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(vendor_ids)
    .load::<CartRow>(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let cart = Cart { stock: row.stock, low_stock_alerted: row.low_stock_alerted };
            (row.vendor_id, LockedCart { cart, restocks: row.restocks })
        })
        .collect())
}

/// Locks one vendor's cart, creating it if the member has none.
pub async fn lock_cart(
    conn: &mut AsyncPgConnection,
    vendor_id: Uuid,
    initial_stock: i32,
) -> Result<LockedCart, StoreError> {
    lock_carts(conn, &[vendor_id], initial_stock).await?.remove(&vendor_id).ok_or(StoreError::UnknownVendor(vendor_id))
}

/// Writes the sales' effect on every changed cart, in one statement: its
/// stock and alert, and its last sale (the latest `occurred_at` of the
/// batch's sales, never moved back), which the cart tracking's silence check
/// reads.
pub async fn save_after_sales(
    conn: &mut AsyncPgConnection,
    changed: &[(Uuid, Cart, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    if changed.is_empty() {
        return Ok(());
    }
    let vendors: Vec<Uuid> = changed.iter().map(|(vendor, _, _)| *vendor).collect();
    let stocks: Vec<i32> = changed.iter().map(|(_, cart, _)| cart.stock).collect();
    let alerted: Vec<bool> = changed.iter().map(|(_, cart, _)| cart.low_stock_alerted).collect();
    let last_sales: Vec<DateTime<Utc>> = changed.iter().map(|(_, _, last_sale)| *last_sale).collect();
    diesel::sql_query(
        "UPDATE carts c SET stock = v.stock, low_stock_alerted = v.alerted, updated_at = $4, \
         last_sale_at = greatest(c.last_sale_at, v.last_sale) \
         FROM unnest($1::uuid[], $2::int4[], $3::bool[], $5::timestamptz[]) AS v(vendor_id, stock, alerted, last_sale) \
         WHERE c.vendor_id = v.vendor_id",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(vendors)
    .bind::<Array<Integer>, _>(stocks)
    .bind::<Array<Bool>, _>(alerted)
    .bind::<Timestamptz, _>(now)
    .bind::<Array<Timestamptz>, _>(last_sales)
    .execute(conn)
    .await
    .map(drop)
}

/// Writes a restock: the new stock, one more restock, alert re-armed.
/// Returns the cart's restock count after it.
pub async fn save_restock(
    conn: &mut AsyncPgConnection,
    vendor_id: Uuid,
    stock: i32,
    now: DateTime<Utc>,
) -> QueryResult<i32> {
    diesel::update(carts::table.find(vendor_id))
        .set((
            carts::stock.eq(stock),
            carts::restocks.eq(carts::restocks + 1),
            carts::low_stock_alerted.eq(false),
            carts::updated_at.eq(now),
        ))
        .returning(carts::restocks)
        .get_result(conn)
        .await
}

/// The member's name and email, for the emails the distributor requests.
pub async fn recipient(conn: &mut AsyncPgConnection, vendor_id: Uuid) -> Result<Recipient, StoreError> {
    members::table
        .find(vendor_id)
        .select((members::email, members::full_name))
        .first::<(String, String)>(conn)
        .await
        .optional()?
        .map(|(email, full_name)| Recipient { email, full_name })
        .ok_or(StoreError::UnknownVendor(vendor_id))
}

/// The names and emails of `vendor_ids`, in one query.
pub async fn recipients(conn: &mut AsyncPgConnection, vendor_ids: &[Uuid]) -> QueryResult<HashMap<Uuid, Recipient>> {
    if vendor_ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(diesel::sql_query("SELECT member_id, email, full_name FROM members WHERE member_id = ANY($1)")
        .bind::<Array<diesel::sql_types::Uuid>, _>(vendor_ids)
        .load::<RecipientRow>(conn)
        .await?
        .into_iter()
        .map(|row| (row.member_id, Recipient { email: row.email, full_name: row.full_name }))
        .collect())
}
