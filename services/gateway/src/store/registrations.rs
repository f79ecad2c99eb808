//! The `registrations` projection: the gateway inserts a form's row right
//! after publishing it (so its status can be read at once) and reads it back
//! for the status and staff endpoints. Decisions are written by approval.
//!
//! Also the single use of payment references: a paid form's reference is
//! claimed in `payment_references` (primary key on the reference) before the
//! form is published, so two forms naming one reference cannot both enter
//! the paid lane, whichever gateway instances take them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use mamochi_common::schema::registrations;
use mamochi_events::RegistrationSubmitted;
use uuid::Uuid;

use super::{connection, StoreError};

#[derive(Insertable)]
#[diesel(table_name = registrations)]
struct NewRow<'a> {
    registration_id: Uuid,
    full_name: &'a str,
    rut: &'a str,
    email: &'a str,
    phone: &'a str,
    comuna: &'a str,
    cart_plate: &'a str,
    paid: bool,
    payment_reference: Option<&'a str>,
    tracking_token_sha256: &'a str,
    status: &'a str,
    submitted_at: DateTime<Utc>,
}

/// Inserts the form as `received`; a row already there (approval got to the
/// event first and maybe decided it) is left untouched.
pub async fn insert_received(pool: &PgPool, form: &RegistrationSubmitted) -> Result<(), StoreError> {
    let mut conn = connection(pool).await?;
    diesel::insert_into(registrations::table)
        .values(NewRow {
            registration_id: form.registration_id,
            full_name: &form.full_name,
            rut: &form.rut,
            email: &form.email,
            phone: &form.phone,
            comuna: &form.comuna,
            cart_plate: &form.cart_plate,
            paid: form.paid,
            payment_reference: form.payment_reference.as_deref(),
            tracking_token_sha256: &form.tracking_token_sha256,
            status: "received",
            submitted_at: form.submitted_at,
        })
        .on_conflict_do_nothing()
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Whether a payment reference could be claimed for a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The reference is this form's now.
    Claimed,
    /// Another form holds it.
    Taken,
}

/// Claims `reference` for `registration_id`. Atomic in PostgreSQL: of two
/// concurrent claims of one reference exactly one is [`Claim::Claimed`].
pub async fn claim_payment_reference(
    pool: &PgPool,
    reference: &str,
    registration_id: Uuid,
) -> Result<Claim, StoreError> {
    let mut conn = connection(pool).await?;
    let inserted = diesel::sql_query(
        "INSERT INTO payment_references (payment_reference, registration_id) VALUES ($1, $2) \
         ON CONFLICT (payment_reference) DO NOTHING",
    )
    .bind::<diesel::sql_types::Text, _>(reference)
    .bind::<diesel::sql_types::Uuid, _>(registration_id)
    .execute(&mut conn)
    .await?;
    Ok(if inserted == 1 { Claim::Claimed } else { Claim::Taken })
}

/// Gives a claim back (the form it was for was never published), so the
/// client may submit it again. Only `registration_id`'s own claim goes.
pub async fn release_payment_reference(
    pool: &PgPool,
    reference: &str,
    registration_id: Uuid,
) -> Result<(), StoreError> {
    let mut conn = connection(pool).await?;
    diesel::sql_query("DELETE FROM payment_references WHERE payment_reference = $1 AND registration_id = $2")
        .bind::<diesel::sql_types::Text, _>(reference)
        .bind::<diesel::sql_types::Uuid, _>(registration_id)
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// What the status endpoint shows, plus the token digest that guards it.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = registrations, check_for_backend(diesel::pg::Pg))]
pub struct StatusRow {
    pub registration_id: Uuid,
    pub tracking_token_sha256: String,
    pub status: String,
    pub reason: Option<String>,
    pub paid: bool,
    pub submitted_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

pub async fn find_status(pool: &PgPool, id: Uuid) -> Result<Option<StatusRow>, StoreError> {
    let mut conn = connection(pool).await?;
    Ok(registrations::table.find(id).select(StatusRow::as_select()).first(&mut conn).await.optional()?)
}

/// A form as staff review it.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = registrations, check_for_backend(diesel::pg::Pg))]
pub struct ListRow {
    pub registration_id: Uuid,
    pub full_name: String,
    pub rut: String,
    pub email: String,
    pub phone: String,
    pub comuna: String,
    pub cart_plate: String,
    pub paid: bool,
    pub payment_reference: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// Forms in `statuses`, paid first, oldest first, at most `limit`.
pub async fn list(pool: &PgPool, statuses: &[&str], limit: i64) -> Result<Vec<ListRow>, StoreError> {
    let mut conn = connection(pool).await?;
    Ok(registrations::table
        .filter(registrations::status.eq_any(statuses))
        .order((registrations::paid.desc(), registrations::submitted_at.asc()))
        .limit(limit)
        .select(ListRow::as_select())
        .load(&mut conn)
        .await?)
}

/// The form's current status, `None` if unknown.
pub async fn status_of(pool: &PgPool, id: Uuid) -> Result<Option<String>, StoreError> {
    let mut conn = connection(pool).await?;
    Ok(registrations::table.find(id).select(registrations::status).first(&mut conn).await.optional()?)
}
