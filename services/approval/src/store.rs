//! The approval service's database work. Each public function is one
//! transaction; a form's dedupe record, its decision and (on approval) the
//! new member and cart commit together or not at all.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use mamochi_common::schema::{carts, members, processed_events, registrations};
use mamochi_common::seal::{SealError, Sealer};
use mamochi_events::{RegistrationSubmitted, RegistrationReviewed, ReviewDecision};
use uuid::Uuid;

use crate::credentials::{self, RandomError};
use crate::rules::{self, Conflicts, Decision, Form};

/// Namespace of ids this service derives (member ids, email message ids).
pub const NAMESPACE: Uuid = Uuid::from_u128(0x6d61_6d6f_6368_6961_7070_726f_7661_6c00);

/// Dedupe names in `processed_events`.
const FORMS: &str = "approval";
const REVIEWS: &str = "approval-reviews";

/// Why a database step failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("connection pool: {0}")]
    Pool(String),
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// What handling a form or a review did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// This event was applied before (a redelivery); nothing changed.
    Duplicate,
    /// The form was already decided (by staff, say); nothing changed.
    AlreadyDecided,
    /// The review names a form this service never received.
    UnknownRegistration,
    Decided(Decision),
}

/// Settings the decisions need.
#[derive(Debug, Clone)]
pub struct Policy {
    pub initial_stock: i32,
    pub sealer: Sealer,
}

#[derive(Insertable)]
#[diesel(table_name = registrations)]
struct NewRegistration<'a> {
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

/// The registration fields a decision reads.
#[derive(Queryable, Selectable, Debug)]
#[diesel(table_name = registrations, check_for_backend(diesel::pg::Pg))]
struct FormRow {
    registration_id: Uuid,
    full_name: String,
    rut: String,
    email: String,
    phone: String,
    comuna: String,
    cart_plate: String,
    paid: bool,
    payment_reference: Option<String>,
    status: String,
}

#[derive(Insertable)]
#[diesel(table_name = members)]
struct NewMember<'a> {
    member_id: Uuid,
    registration_id: Uuid,
    full_name: &'a str,
    rut: &'a str,
    email: &'a str,
    phone: &'a str,
    comuna: &'a str,
    cart_plate: &'a str,
    paid: bool,
    api_key_id: &'a str,
    api_key_sha256: &'a str,
    pending_credentials: Option<Vec<u8>>,
}

/// Records a submitted form and decides it by the rules.
pub async fn decide_form(
    conn: &mut AsyncPgConnection,
    form: &RegistrationSubmitted,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Applied, StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
            if !first_time(conn, FORMS, form.registration_id).await? {
                return Ok(Applied::Duplicate);
            }
            diesel::insert_into(registrations::table)
                .values(NewRegistration {
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
                .execute(conn)
                .await?;
            let row = locked_form(conn, form.registration_id).await?.ok_or(diesel::result::Error::NotFound)?;
            if row.status != "received" {
                return Ok(Applied::AlreadyDecided);
            }
            let conflicts = conflicts(conn, &row, form.submitted_at).await?;
            let decision = rules::decide(
                Form { rut: &row.rut, paid: row.paid, payment_reference: row.payment_reference.as_deref() },
                conflicts,
            );
            apply(conn, &row, &decision, "rules", policy, now).await?;
            Ok(Applied::Decided(decision))
    })
    .await
}

/// Applies a staff review to a form still waiting for a decision.
pub async fn apply_review(
    conn: &mut AsyncPgConnection,
    review: &RegistrationReviewed,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Applied, StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
            if !first_time(conn, REVIEWS, review.review_id).await? {
                return Ok(Applied::Duplicate);
            }
            let Some(row) = locked_form(conn, review.registration_id).await? else {
                return Ok(Applied::UnknownRegistration);
            };
            if row.status != "received" && row.status != "manual_review" {
                return Ok(Applied::AlreadyDecided);
            }
            let decision = match review.decision {
                ReviewDecision::Approve => {
                    let taken = members::table
                        .filter(members::rut.eq(&row.rut).or(members::email.eq(&row.email)))
                        .count()
                        .get_result::<i64>(conn)
                        .await?;
                    if taken > 0 {
                        Decision::Rejected("ya existe un socio con este RUT o correo".into())
                    } else {
                        Decision::Approved
                    }
                }
                ReviewDecision::Reject | ReviewDecision::Unknown => Decision::Rejected(
                    review.reason.clone().unwrap_or_else(|| "rechazada por la directiva del gremio".into()),
                ),
            };
            apply(conn, &row, &decision, &review.reviewer, policy, now).await?;
            Ok(Applied::Decided(decision))
    })
    .await
}

/// Inserts the dedupe record; `false` if the event was applied before.
async fn first_time(conn: &mut AsyncPgConnection, consumer: &str, event_id: Uuid) -> Result<bool, diesel::result::Error> {
    let inserted = diesel::insert_into(processed_events::table)
        .values((processed_events::consumer.eq(consumer), processed_events::event_id.eq(event_id)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

async fn locked_form(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<FormRow>, diesel::result::Error> {
    registrations::table
        .find(id)
        .select(FormRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

async fn conflicts(conn: &mut AsyncPgConnection, row: &FormRow, submitted_at: DateTime<Utc>) -> Result<Conflicts, diesel::result::Error> {
    let exists = |query: i64| query > 0;
    let member_with_rut = exists(members::table.filter(members::rut.eq(&row.rut)).count().get_result(conn).await?);
    let member_with_email = exists(members::table.filter(members::email.eq(&row.email)).count().get_result(conn).await?);
    let earlier_pending_with_rut_or_email = exists(
        registrations::table
            .filter(registrations::registration_id.ne(row.registration_id))
            .filter(registrations::status.eq_any(["received", "manual_review"]))
            .filter(registrations::rut.eq(&row.rut).or(registrations::email.eq(&row.email)))
            .filter(registrations::submitted_at.lt(submitted_at))
            .count()
            .get_result(conn)
            .await?,
    );
    let member_with_plate = exists(members::table.filter(members::cart_plate.eq(&row.cart_plate)).count().get_result(conn).await?);
    let member_with_phone = exists(members::table.filter(members::phone.eq(&row.phone)).count().get_result(conn).await?);
    Ok(Conflicts { member_with_rut, member_with_email, earlier_pending_with_rut_or_email, member_with_plate, member_with_phone })
}

/// Writes a decision; on approval creates the member (with a new API key,
/// stored as a hash, and sealed until its email is requested) and the cart.
async fn apply(
    conn: &mut AsyncPgConnection,
    row: &FormRow,
    decision: &Decision,
    decided_by: &str,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (status, reason, member_id, decided_at) = match decision {
        Decision::Approved => {
            let member_id = Uuid::new_v5(&NAMESPACE, row.registration_id.as_bytes());
            let key = credentials::generate()?;
            let sealed = policy.sealer.seal(&key.clear)?;
            diesel::insert_into(members::table)
                .values(NewMember {
                    member_id,
                    registration_id: row.registration_id,
                    full_name: &row.full_name,
                    rut: &row.rut,
                    email: &row.email,
                    phone: &row.phone,
                    comuna: &row.comuna,
                    cart_plate: &row.cart_plate,
                    paid: row.paid,
                    api_key_id: &key.key_id,
                    api_key_sha256: &key.sha256,
                    pending_credentials: Some(sealed),
                })
                .execute(conn)
                .await?;
            diesel::insert_into(carts::table)
                .values((carts::vendor_id.eq(member_id), carts::stock.eq(policy.initial_stock)))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            ("approved", None, Some(member_id), Some(now))
        }
        Decision::Rejected(reason) => ("rejected", Some(reason.as_str()), None, Some(now)),
        Decision::ManualReview(reason) => ("manual_review", Some(reason.as_str()), None, None),
    };
    diesel::update(registrations::table.find(row.registration_id))
        .set((
            registrations::status.eq(status),
            registrations::reason.eq(reason),
            registrations::decided_by.eq(decided_by),
            registrations::member_id.eq(member_id),
            registrations::decided_at.eq(decided_at),
            // A new decision has not been published yet.
            registrations::published_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
    Ok(())
}
