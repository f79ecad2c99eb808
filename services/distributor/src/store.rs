//! The distributor's SQL: the dedupe record, the locked cart row, and the
//! member's contact details (read only; approval owns `members`).
//!
//! Every function runs on a connection inside the caller's transaction. The
//! cart is read with `SELECT … FOR UPDATE`, so the sales runner and the stock
//! runner (or two processes during a rebalance) never interleave a
//! read-modify-write of the same cart.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
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

/// Records that `consumer` applied `event_id`; `false` if it already had.
pub async fn first_time(conn: &mut AsyncPgConnection, consumer: &str, event_id: Uuid) -> QueryResult<bool> {
    let inserted = diesel::insert_into(processed_events::table)
        .values((processed_events::consumer.eq(consumer), processed_events::event_id.eq(event_id)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

/// Locks the vendor's cart, creating it with `initial_stock` if the member
/// has none yet (approval normally creates it with the member).
pub async fn lock_cart(conn: &mut AsyncPgConnection, vendor_id: Uuid, initial_stock: i32) -> Result<Cart, StoreError> {
    if let Some(cart) = select_for_update(conn, vendor_id).await? {
        return Ok(cart);
    }
    let is_member: bool =
        diesel::select(diesel::dsl::exists(members::table.find(vendor_id).select(members::member_id)))
            .get_result(conn)
            .await?;
    if !is_member {
        return Err(StoreError::UnknownVendor(vendor_id));
    }
    tracing::warn!(%vendor_id, initial_stock, "member had no cart; creating it");
    diesel::insert_into(carts::table)
        .values((carts::vendor_id.eq(vendor_id), carts::stock.eq(initial_stock.max(0))))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    select_for_update(conn, vendor_id).await?.ok_or(StoreError::UnknownVendor(vendor_id))
}

async fn select_for_update(conn: &mut AsyncPgConnection, vendor_id: Uuid) -> QueryResult<Option<Cart>> {
    carts::table
        .find(vendor_id)
        .select((carts::stock, carts::low_stock_alerted))
        .for_update()
        .first::<(i32, bool)>(conn)
        .await
        .optional()
        .map(|row| row.map(|(stock, low_stock_alerted)| Cart { stock, low_stock_alerted }))
}

/// Writes a sale's effect.
pub async fn save_after_sale(
    conn: &mut AsyncPgConnection,
    vendor_id: Uuid,
    cart: Cart,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(carts::table.find(vendor_id))
        .set((carts::stock.eq(cart.stock), carts::low_stock_alerted.eq(cart.low_stock_alerted), carts::updated_at.eq(now)))
        .execute(conn)
        .await
        .map(drop)
}

/// Writes a restock: the new stock, one more restock, alert re-armed.
pub async fn save_restock(conn: &mut AsyncPgConnection, vendor_id: Uuid, stock: i32, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(carts::table.find(vendor_id))
        .set((
            carts::stock.eq(stock),
            carts::restocks.eq(carts::restocks + 1),
            carts::low_stock_alerted.eq(false),
            carts::updated_at.eq(now),
        ))
        .execute(conn)
        .await
        .map(drop)
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
