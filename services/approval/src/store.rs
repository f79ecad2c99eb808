//! The approval service's database work. Each public function is one
//! transaction; a form's dedupe record, its decision and (on approval) the
//! new member and cart commit together or not at all — for a batch of forms,
//! every form's together: the batch commits whole or not at all.
//!
//! A batch costs a fixed number of statements whatever its size: one
//! multi-row insert each for dedupe records, forms, members and carts, one
//! look-up answering every rule for every form, one update recording every
//! outcome.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use mamochi_common::dedupe::first_times;
use mamochi_common::schema::{carts, members, registrations};
use mamochi_common::seal::{SealError, Sealer};
use mamochi_events::{RegistrationReviewed, RegistrationSubmitted, ReviewDecision};
use uuid::Uuid;

use crate::credentials::{self, RandomError};
use crate::rules::{Conflicts, Decision, Form};
use crate::sequence::{self, Candidate};

/// Namespace of ids this service derives (member ids, email message ids).
pub const NAMESPACE: Uuid = Uuid::from_u128(0x6d61_6d6f_6368_6961_7070_726f_7661_6c00);

/// Dedupe names in `processed_events` (also read by retention, which
/// prunes each name's rows after its topic's replay window).
pub const FORMS: &str = "approval";
pub const REVIEWS: &str = "approval-reviews";

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
    submitted_at: DateTime<Utc>,
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

/// Records a batch of submitted forms and decides them by the rules, in one
/// transaction; one [`Applied`] per form, in the batch's order. Forms are
/// decided in the order given, each seeing the ones before it (see
/// [`crate::sequence`]); a form given twice is applied once.
pub async fn decide_forms(
    conn: &mut AsyncPgConnection,
    forms: &[RegistrationSubmitted],
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Vec<Applied>, StoreError> {
    if forms.is_empty() {
        return Ok(Vec::new());
    }
    conn.transaction::<_, StoreError, _>(async |conn| {
        let mut applied = vec![Applied::Duplicate; forms.len()];
        let ids: Vec<Uuid> = forms.iter().map(|form| form.registration_id).collect();
        let fresh = first_times(conn, FORMS, &ids).await?;
        let mut seen = HashSet::with_capacity(forms.len());
        let new_forms: Vec<usize> = (0..forms.len())
            .filter(|&index| {
                let id = forms[index].registration_id;
                fresh.contains(&id) && seen.insert(id)
            })
            .collect();
        if new_forms.is_empty() {
            return Ok(applied);
        }
        let rows: Vec<NewRegistration<'_>> = new_forms
            .iter()
            .map(|&index| {
                let form = &forms[index];
                NewRegistration {
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
                }
            })
            .collect();
        diesel::insert_into(registrations::table).values(&rows).on_conflict_do_nothing().execute(conn).await?;
        let ids: Vec<Uuid> = new_forms.iter().map(|&index| forms[index].registration_id).collect();
        let mut locked = locked_forms(conn, &ids).await?;
        let mut undecided = Vec::with_capacity(new_forms.len());
        for &index in &new_forms {
            let row = locked.remove(&forms[index].registration_id).ok_or(diesel::result::Error::NotFound)?;
            if row.status == "received" {
                undecided.push((index, row));
            } else {
                applied[index] = Applied::AlreadyDecided;
            }
        }
        if undecided.is_empty() {
            return Ok(applied);
        }
        let rows: Vec<&FormRow> = undecided.iter().map(|(_, row)| row).collect();
        let stored = stored_conflicts(conn, &rows).await?;
        let candidates: Vec<Candidate<'_>> = rows
            .iter()
            .zip(stored)
            .map(|(row, stored)| Candidate {
                form: Form { rut: &row.rut, paid: row.paid, payment_reference: row.payment_reference.as_deref() },
                email: &row.email,
                cart_plate: &row.cart_plate,
                phone: &row.phone,
                submitted_at: row.submitted_at,
                stored,
            })
            .collect();
        let decisions = sequence::decide_in_order(&candidates);
        let decided: Vec<(&FormRow, &Decision)> = rows.iter().copied().zip(&decisions).collect();
        apply(conn, &decided, "rules", policy, now).await?;
        for ((index, _), decision) in undecided.iter().zip(decisions) {
            applied[*index] = Applied::Decided(decision);
        }
        Ok(applied)
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
        if first_times(conn, REVIEWS, &[review.review_id]).await?.is_empty() {
            return Ok(Applied::Duplicate);
        }
        let Some(row) = locked_forms(conn, &[review.registration_id]).await?.remove(&review.registration_id) else {
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
        apply(conn, &[(&row, &decision)], &review.reviewer, policy, now).await?;
        Ok(Applied::Decided(decision))
    })
    .await
}

/// The forms with these ids, locked until the transaction ends (in id order,
/// so two transactions locking overlapping sets cannot deadlock).
async fn locked_forms(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, FormRow>, diesel::result::Error> {
    let rows: Vec<FormRow> = registrations::table
        .filter(registrations::registration_id.eq_any(ids))
        .order(registrations::registration_id)
        .select(FormRow::as_select())
        .for_update()
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|row| (row.registration_id, row)).collect())
}

/// What the database says about one form of a batch.
#[derive(QueryableByName, Debug)]
struct StoredConflicts {
    #[diesel(sql_type = BigInt)]
    position: i64,
    #[diesel(sql_type = Bool)]
    member_with_rut: bool,
    #[diesel(sql_type = Bool)]
    member_with_email: bool,
    #[diesel(sql_type = Bool)]
    earlier_pending_with_rut_or_email: bool,
    #[diesel(sql_type = Bool)]
    member_with_plate: bool,
    #[diesel(sql_type = Bool)]
    member_with_phone: bool,
}

/// Every rule look-up of every form in one statement, each an index probe
/// (migration `2026-12-01-000002_approval_indexes`). Forms of the batch itself
/// are left out of "pending": they are being decided now, in order, by
/// [`sequence`]. One [`Conflicts`] per row, in the rows' order.
const STORED_CONFLICTS: &str = "
SELECT f.position,
       EXISTS (SELECT 1 FROM members m WHERE m.rut = f.rut) AS member_with_rut,
       EXISTS (SELECT 1 FROM members m WHERE m.email = f.email) AS member_with_email,
       (EXISTS (SELECT 1 FROM registrations r
                 WHERE r.rut = f.rut AND r.status IN ('received', 'manual_review')
                   AND r.submitted_at < f.submitted_at AND r.registration_id <> ALL ($1))
        OR EXISTS (SELECT 1 FROM registrations r
                    WHERE r.email = f.email AND r.status IN ('received', 'manual_review')
                      AND r.submitted_at < f.submitted_at AND r.registration_id <> ALL ($1)))
           AS earlier_pending_with_rut_or_email,
       EXISTS (SELECT 1 FROM members m WHERE m.cart_plate = f.cart_plate) AS member_with_plate,
       EXISTS (SELECT 1 FROM members m WHERE m.phone = f.phone) AS member_with_phone
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
       WITH ORDINALITY AS f(registration_id, rut, email, cart_plate, phone, submitted_at, position)
 ORDER BY f.position";

async fn stored_conflicts(
    conn: &mut AsyncPgConnection,
    rows: &[&FormRow],
) -> Result<Vec<Conflicts>, diesel::result::Error> {
    let column = |field: fn(&FormRow) -> &String| rows.iter().map(|row| field(row).clone()).collect::<Vec<String>>();
    let found: Vec<StoredConflicts> = diesel::sql_query(STORED_CONFLICTS)
        .bind::<Array<SqlUuid>, _>(rows.iter().map(|row| row.registration_id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(column(|row| &row.rut))
        .bind::<Array<Text>, _>(column(|row| &row.email))
        .bind::<Array<Text>, _>(column(|row| &row.cart_plate))
        .bind::<Array<Text>, _>(column(|row| &row.phone))
        .bind::<Array<Timestamptz>, _>(rows.iter().map(|row| row.submitted_at).collect::<Vec<_>>())
        .load(conn)
        .await?;
    if found.len() != rows.len() || found.iter().enumerate().any(|(index, row)| row.position != index as i64 + 1) {
        return Err(diesel::result::Error::NotFound);
    }
    Ok(found
        .into_iter()
        .map(|row| Conflicts {
            member_with_rut: row.member_with_rut,
            member_with_email: row.member_with_email,
            earlier_pending_with_rut_or_email: row.earlier_pending_with_rut_or_email,
            member_with_plate: row.member_with_plate,
            member_with_phone: row.member_with_phone,
        })
        .collect())
}

/// Sets every decided form's outcome in one statement. The `= ANY` lets the
/// planner find the rows by primary key however large the table grows.
const RECORD_DECISIONS: &str = "
UPDATE registrations AS r
   SET status = d.status, reason = d.reason, decided_by = $1, member_id = d.member_id,
       decided_at = d.decided_at, published_at = NULL
  FROM unnest($2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::timestamptz[])
       AS d(registration_id, status, reason, member_id, decided_at)
 WHERE r.registration_id = d.registration_id
   AND r.registration_id = ANY ($2)";

/// Writes decisions; on approval creates the member (with a new API key,
/// stored as a hash, and sealed until its email is requested) and the cart.
/// Multi-row statements: members, carts, then every form's outcome. A new
/// decision is not published yet (`published_at` is cleared).
async fn apply(
    conn: &mut AsyncPgConnection,
    decided: &[(&FormRow, &Decision)],
    decided_by: &str,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut keys = Vec::new();
    let mut outcomes = Outcomes::with_capacity(decided.len());
    for (row, decision) in decided {
        let (status, reason, member_id, decided_at) = match decision {
            Decision::Approved => {
                let member_id = Uuid::new_v5(&NAMESPACE, row.registration_id.as_bytes());
                let key = credentials::generate()?;
                let sealed = policy.sealer.seal(&key.clear)?;
                keys.push((*row, member_id, key, sealed));
                ("approved", None, Some(member_id), Some(now))
            }
            Decision::Rejected(reason) => ("rejected", Some(reason.clone()), None, Some(now)),
            Decision::ManualReview(reason) => ("manual_review", Some(reason.clone()), None, None),
        };
        outcomes.ids.push(row.registration_id);
        outcomes.statuses.push(status.to_string());
        outcomes.reasons.push(reason);
        outcomes.member_ids.push(member_id);
        outcomes.decided_at.push(decided_at);
    }
    if !keys.is_empty() {
        let members: Vec<NewMember<'_>> = keys
            .iter()
            .map(|(row, member_id, key, sealed)| NewMember {
                member_id: *member_id,
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
                pending_credentials: Some(sealed.clone()),
            })
            .collect();
        diesel::insert_into(members::table).values(&members).execute(conn).await?;
        let carts: Vec<_> = keys
            .iter()
            .map(|(_, member_id, _, _)| (carts::vendor_id.eq(*member_id), carts::stock.eq(policy.initial_stock)))
            .collect();
        diesel::insert_into(carts::table).values(&carts).on_conflict_do_nothing().execute(conn).await?;
    }
    diesel::sql_query(RECORD_DECISIONS)
        .bind::<Text, _>(decided_by)
        .bind::<Array<SqlUuid>, _>(outcomes.ids)
        .bind::<Array<Text>, _>(outcomes.statuses)
        .bind::<Array<Nullable<Text>>, _>(outcomes.reasons)
        .bind::<Array<Nullable<SqlUuid>>, _>(outcomes.member_ids)
        .bind::<Array<Nullable<Timestamptz>>, _>(outcomes.decided_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// The columns of [`RECORD_DECISIONS`], one entry per form.
struct Outcomes {
    ids: Vec<Uuid>,
    statuses: Vec<String>,
    reasons: Vec<Option<String>>,
    member_ids: Vec<Option<Uuid>>,
    decided_at: Vec<Option<DateTime<Utc>>>,
}

impl Outcomes {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            ids: Vec::with_capacity(capacity),
            statuses: Vec::with_capacity(capacity),
            reasons: Vec::with_capacity(capacity),
            member_ids: Vec::with_capacity(capacity),
            decided_at: Vec::with_capacity(capacity),
        }
    }
}
