//! The `emails` table: one row per message id, recording what became of it.
//!
//! Every function runs on a connection the caller holds inside a transaction.
//! [`claim`] locks the row (`SELECT … FOR UPDATE`), so two handlers given the
//! same message id (a rebalance, a duplicated request) are serialised: the
//! second waits for the first to commit and then sees `sent`. The body is
//! never stored: it may hold a secret.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use mamochi_common::schema::emails;
use uuid::Uuid;

/// Status values of `emails.status` (the table's CHECK constraint).
pub mod status {
    pub const PENDING: &str = "pending";
    pub const SENT: &str = "sent";
    pub const FAILED: &str = "failed";
}

/// The row a request creates.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = emails, check_for_backend(diesel::pg::Pg))]
pub struct NewEmail<'a> {
    pub message_id: Uuid,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub category: &'a str,
    pub status: &'a str,
    pub attempts: i32,
    pub requested_at: DateTime<Utc>,
}

/// What the row says about sending now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Not sent yet; `attempts` earlier tries failed.
    Send { attempts: i32 },
    /// Already sent: sending again would be a duplicate.
    AlreadySent,
}

/// Creates the row if it is new (`pending`, no attempts), then locks it and
/// says whether it still has to be sent.
pub async fn claim(conn: &mut AsyncPgConnection, new: &NewEmail<'_>) -> QueryResult<Claim> {
    diesel::insert_into(emails::table).values(new).on_conflict_do_nothing().execute(conn).await?;
    let (current, attempts): (String, i32) =
        emails::table.find(new.message_id).select((emails::status, emails::attempts)).for_update().first(conn).await?;
    Ok(if current == status::SENT { Claim::AlreadySent } else { Claim::Send { attempts } })
}

/// One more failed attempt, and why.
pub async fn record_failure(conn: &mut AsyncPgConnection, message_id: Uuid, error: &str) -> QueryResult<()> {
    diesel::update(emails::table.find(message_id))
        .set((emails::attempts.eq(emails::attempts + 1), emails::last_error.eq(error)))
        .execute(conn)
        .await
        .map(drop)
}

/// The relay accepted it: `sent`, when, and the attempt that did it.
pub async fn record_sent(conn: &mut AsyncPgConnection, message_id: Uuid, sent_at: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(emails::table.find(message_id))
        .set((emails::status.eq(status::SENT), emails::sent_at.eq(sent_at), emails::attempts.eq(emails::attempts + 1)))
        .execute(conn)
        .await
        .map(drop)
}

/// The attempt that failed was its last (the relay refused it for good, or
/// its retry budget ran out): `failed`, one more attempt, and why. A row
/// that is already `sent` stays `sent`.
pub async fn record_given_up(conn: &mut AsyncPgConnection, message_id: Uuid, error: &str) -> QueryResult<()> {
    diesel::update(emails::table.find(message_id).filter(emails::status.ne(status::SENT)))
        .set((
            emails::status.eq(status::FAILED),
            emails::attempts.eq(emails::attempts + 1),
            emails::last_error.eq(error),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// It can never make a message (a bad address, a secret that does not open),
/// so no attempt was made. A row that is already `sent` stays `sent`.
pub async fn record_rejected(conn: &mut AsyncPgConnection, new: &NewEmail<'_>, error: &str) -> QueryResult<()> {
    diesel::insert_into(emails::table).values(new).on_conflict_do_nothing().execute(conn).await?;
    diesel::update(emails::table.find(new.message_id).filter(emails::status.ne(status::SENT)))
        .set((emails::status.eq(status::FAILED), emails::last_error.eq(error)))
        .execute(conn)
        .await
        .map(drop)
}
