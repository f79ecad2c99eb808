//! Cart incidents: opening and clearing them, and what each step derives.
//! Every rule that decides whether an alarm is raised or cleared is here;
//! the callers ([`super::intake`], [`super::silence`]) only say what they saw.
//!
//! An incident is a row of `cart_incidents`: opened (RAISED) by inserting
//! it, closed (CLEARED) by setting its `cleared_at`. The partial unique index
//! `cart_incidents_one_open (vendor_id, cause) WHERE cleared_at IS NULL`
//! allows at most one open incident per cart and cause.
//!
//! Guarantee: exactly one RAISED and at most one CLEARED record in effect per
//! incident, across redeliveries, restarts, crashes and concurrent instances.
//! - [`open`] inserts with `ON CONFLICT DO NOTHING`: a cart that already has
//!   an open incident of that cause (or an incident id that already exists)
//!   inserts nothing, and only rows actually inserted derive records.
//! - [`clear`] updates only rows still open (`cleared_at IS NULL`); a second
//!   clearing, even concurrent, finds the row closed (the row lock makes it
//!   wait for the first and re-check) and derives nothing.
//! - The caller runs either inside the transaction that also writes the
//!   derived records to `distributor_outbox` (the [`CartAlarm`] and the two
//!   emails, vendor and staff); so the records exist if and only if the row
//!   change committed, and the relay publishes them at least once after the
//!   commit. A crash before the commit leaves neither.
//! - Every derived id is deterministic: incident ids are UUID v5 of what
//!   opened them ([`incident_id`], [`silent_incident_id`]), alarm and email
//!   ids UUID v5 of the incident id and a label (`raised`, `cleared`,
//!   `raised-vendor`, `raised-staff`, `cleared-vendor`, `cleared-staff`), so a
//!   record published twice is recognisably the same.
//! - Per incident, CLEARED is written after RAISED committed (clearing needs
//!   the committed open row), so it follows RAISED in the outbox and on the
//!   vendor's partition.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Double, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use mamochi_events::{CartAlarm, CartAlarmCause, CartAlarmState, EmailRequested};
use uuid::Uuid;

use super::profiles::Profile;
use crate::derived::derived_id;
use crate::outbox::OutboxRecord;

/// Email categories (the notifier's metric labels).
pub const CATEGORY_RAISED: &str = "cart_alarm";
pub const CATEGORY_CLEARED: &str = "cart_alarm_cleared";

/// What a position inside the area again clears.
pub const CLEARED_BY_POSITION: &[CartAlarmCause] = &[CartAlarmCause::OutOfArea, CartAlarmCause::Silent];
/// What a FOUND report clears: everything.
pub const CLEARED_BY_FOUND: &[CartAlarmCause] =
    &[CartAlarmCause::ReportedMissing, CartAlarmCause::Silent, CartAlarmCause::OutOfArea];

/// The `cause` column's text for `cause` (the Avro symbol).
pub fn cause_column(cause: CartAlarmCause) -> &'static str {
    match cause {
        CartAlarmCause::ReportedMissing => "REPORTED_MISSING",
        CartAlarmCause::Silent => "SILENT",
        CartAlarmCause::OutOfArea => "OUT_OF_AREA",
        CartAlarmCause::Unknown => "UNKNOWN",
    }
}

fn cause_from_column(column: &str) -> CartAlarmCause {
    match column {
        "REPORTED_MISSING" => CartAlarmCause::ReportedMissing,
        "SILENT" => CartAlarmCause::Silent,
        "OUT_OF_AREA" => CartAlarmCause::OutOfArea,
        _ => CartAlarmCause::Unknown,
    }
}

/// The metric label of `cause`.
pub fn cause_label(cause: CartAlarmCause) -> &'static str {
    match cause {
        CartAlarmCause::ReportedMissing => "reported_missing",
        CartAlarmCause::Silent => "silent",
        CartAlarmCause::OutOfArea => "out_of_area",
        CartAlarmCause::Unknown => "unknown",
    }
}

/// The metric label of `state`.
pub fn state_label(state: CartAlarmState) -> &'static str {
    match state {
        CartAlarmState::Raised => "raised",
        CartAlarmState::Cleared => "cleared",
        CartAlarmState::Unknown => "unknown",
    }
}

/// The id of the incident of `cause` that the tracking event `event_id`
/// opens: the same event always opens the same incident.
pub fn incident_id(cause: CartAlarmCause, event_id: Uuid) -> Uuid {
    derived_id(&format!("incident-{}", cause_column(cause)), event_id)
}

/// The id of the SILENT incident of `vendor_id` whose silence passed its
/// limit at `evidence_at`: the same silence is one incident, however many
/// checks (or instances) find it, and once cleared it is not opened again.
pub fn silent_incident_id(vendor_id: Uuid, evidence_at: DateTime<Utc>) -> Uuid {
    derived_id(&format!("incident-SILENT-{}", evidence_at.timestamp_millis()), vendor_id)
}

/// An incident to open, if none of its cause is open for the cart.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    pub incident_id: Uuid,
    pub vendor_id: Uuid,
    pub cause: CartAlarmCause,
    /// The tracking event that shows it (none for a silence).
    pub event_id: Option<Uuid>,
    pub evidence_at: DateTime<Utc>,
    /// The last known position, if any.
    pub position: Option<(f64, f64)>,
    pub distance_m: Option<f64>,
    /// One human sentence on what happened (Spanish, for the emails).
    pub detail: String,
}

/// A cart whose open incidents of `causes` are to be closed.
#[derive(Debug, Clone, PartialEq)]
pub struct Clearing {
    pub vendor_id: Uuid,
    pub causes: &'static [CartAlarmCause],
    /// The tracking event that shows it.
    pub event_id: Uuid,
    pub evidence_at: DateTime<Utc>,
    /// The position that shows it, if any.
    pub position: Option<(f64, f64)>,
    pub detail: String,
}

/// Who hears about alarms, beside the vendor.
#[derive(Debug, Clone)]
pub struct Audience<'a> {
    pub profiles: &'a HashMap<Uuid, Arc<Profile>>,
    pub staff_email: &'a str,
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    incident_id: Uuid,
}

#[derive(QueryableByName)]
struct Closed {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    incident_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    vendor_id: Uuid,
    #[diesel(sql_type = Text)]
    cause: String,
}

/// Why an incident step failed; the caller's transaction rolls back.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error("vendor {0} has no profile loaded (not a member)")]
    NoProfile(Uuid),
}

/// Opens each of `openings` whose cart has no open incident of its cause,
/// in one statement, and appends the RAISED record and its two emails to
/// `records` for every incident actually opened. Returns the RAISED alarms.
/// Runs on the caller's transaction; `openings` must name each (cart,
/// cause) at most once.
pub async fn open(
    conn: &mut AsyncPgConnection,
    openings: &[Opening],
    audience: &Audience<'_>,
    now: DateTime<Utc>,
    records: &mut Vec<OutboxRecord>,
) -> Result<Vec<CartAlarm>, IncidentError> {
    if openings.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: fn(&Opening) -> Option<f64>| openings.iter().map(f).collect::<Vec<_>>();
    let inserted = diesel::sql_query(
        "INSERT INTO cart_incidents \
         (incident_id, vendor_id, cause, opened_by_event_id, evidence_at, opened_at, latitude, longitude, distance_m, detail) \
         SELECT o.incident_id, o.vendor_id, o.cause, o.event_id, o.evidence_at, $10, o.latitude, o.longitude, o.distance_m, o.detail \
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::timestamptz[], \
                     $6::float8[], $7::float8[], $8::float8[], $9::text[]) \
              AS o(incident_id, vendor_id, cause, event_id, evidence_at, latitude, longitude, distance_m, detail) \
         ON CONFLICT DO NOTHING \
         RETURNING incident_id",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(openings.iter().map(|o| o.incident_id).collect::<Vec<_>>())
    .bind::<Array<diesel::sql_types::Uuid>, _>(openings.iter().map(|o| o.vendor_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(openings.iter().map(|o| cause_column(o.cause)).collect::<Vec<_>>())
    .bind::<Array<Nullable<diesel::sql_types::Uuid>>, _>(openings.iter().map(|o| o.event_id).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(openings.iter().map(|o| o.evidence_at).collect::<Vec<_>>())
    .bind::<Array<Nullable<Double>>, _>(column(|o| o.position.map(|(latitude, _)| latitude)))
    .bind::<Array<Nullable<Double>>, _>(column(|o| o.position.map(|(_, longitude)| longitude)))
    .bind::<Array<Nullable<Double>>, _>(column(|o| o.distance_m))
    .bind::<Array<Text>, _>(openings.iter().map(|o| o.detail.as_str()).collect::<Vec<_>>())
    .bind::<Timestamptz, _>(now)
    .load::<Inserted>(conn)
    .await?;
    let mut raised = Vec::with_capacity(inserted.len());
    // In the openings' order, so the outbox follows the caller's order.
    for opening in openings.iter().filter(|o| inserted.iter().any(|row| row.incident_id == o.incident_id)) {
        let profile = audience.profiles.get(&opening.vendor_id).ok_or(IncidentError::NoProfile(opening.vendor_id))?;
        let alarm = CartAlarm {
            event_id: derived_id("raised", opening.incident_id),
            incident_id: opening.incident_id,
            vendor_id: opening.vendor_id,
            cause: opening.cause,
            state: CartAlarmState::Raised,
            evidence_at: opening.evidence_at,
            decided_at: now,
            latitude: opening.position.map(|(latitude, _)| latitude),
            longitude: opening.position.map(|(_, longitude)| longitude),
            distance_m: opening.distance_m,
            detail: opening.detail.clone(),
        };
        derive(&alarm, profile, audience.staff_email, records);
        raised.push(alarm);
    }
    Ok(raised)
}

/// Closes every open incident of each clearing's causes, in one statement,
/// and appends the CLEARED record and its two emails to `records` for every
/// incident actually closed. Returns the CLEARED alarms. Runs on the
/// caller's transaction; `clearings` must name each cart at most once.
pub async fn clear(
    conn: &mut AsyncPgConnection,
    clearings: &[Clearing],
    audience: &Audience<'_>,
    now: DateTime<Utc>,
    records: &mut Vec<OutboxRecord>,
) -> Result<Vec<CartAlarm>, IncidentError> {
    let pairs: Vec<(&Clearing, CartAlarmCause)> =
        clearings.iter().flat_map(|clearing| clearing.causes.iter().map(move |cause| (clearing, *cause))).collect();
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let mut closed = diesel::sql_query(
        "UPDATE cart_incidents i \
         SET cleared_at = $5, cleared_evidence_at = c.evidence_at, cleared_by_event_id = c.event_id \
         FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::uuid[]) AS c(vendor_id, cause, evidence_at, event_id) \
         WHERE i.vendor_id = c.vendor_id AND i.cause = c.cause AND i.cleared_at IS NULL \
         RETURNING i.incident_id, i.vendor_id, i.cause",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(pairs.iter().map(|(c, _)| c.vendor_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(pairs.iter().map(|(_, cause)| cause_column(*cause)).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(pairs.iter().map(|(c, _)| c.evidence_at).collect::<Vec<_>>())
    .bind::<Array<diesel::sql_types::Uuid>, _>(pairs.iter().map(|(c, _)| c.event_id).collect::<Vec<_>>())
    .bind::<Timestamptz, _>(now)
    .load::<Closed>(conn)
    .await?;
    // In the clearings' order, then by cause, so the outbox is deterministic.
    let position = |row: &Closed| {
        pairs.iter().position(|(c, cause)| c.vendor_id == row.vendor_id && cause_column(*cause) == row.cause)
    };
    closed.sort_by_key(|row| position(row));
    let mut cleared = Vec::with_capacity(closed.len());
    for row in closed {
        let Some((clearing, cause)) = position(&row).and_then(|index| pairs.get(index)) else { continue };
        let profile = audience.profiles.get(&row.vendor_id).ok_or(IncidentError::NoProfile(row.vendor_id))?;
        debug_assert_eq!(*cause, cause_from_column(&row.cause));
        let alarm = CartAlarm {
            event_id: derived_id("cleared", row.incident_id),
            incident_id: row.incident_id,
            vendor_id: row.vendor_id,
            cause: *cause,
            state: CartAlarmState::Cleared,
            evidence_at: clearing.evidence_at,
            decided_at: now,
            latitude: clearing.position.map(|(latitude, _)| latitude),
            longitude: clearing.position.map(|(_, longitude)| longitude),
            distance_m: None,
            detail: clearing.detail.clone(),
        };
        derive(&alarm, profile, audience.staff_email, records);
        cleared.push(alarm);
    }
    Ok(cleared)
}

#[derive(QueryableByName)]
struct OpenCount {
    #[diesel(sql_type = Text)]
    cause: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    open: i64,
}

/// How many incidents are open now, by cause (every cause, zeros included).
pub async fn open_counts(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Vec<(CartAlarmCause, i64)>> {
    let rows =
        diesel::sql_query("SELECT cause, count(*) AS open FROM cart_incidents WHERE cleared_at IS NULL GROUP BY cause")
            .load::<OpenCount>(conn)
            .await?;
    Ok(CLEARED_BY_FOUND
        .iter()
        .map(|cause| {
            let open = rows.iter().find(|row| cause_from_column(&row.cause) == *cause).map_or(0, |row| row.open);
            (*cause, open)
        })
        .collect())
}

/// The alarm record and its two emails (vendor, staff).
fn derive(alarm: &CartAlarm, profile: &Profile, staff_email: &str, records: &mut Vec<OutboxRecord>) {
    records.push(OutboxRecord::Alarm(alarm.clone()));
    records.push(OutboxRecord::Email(email(alarm, profile, &profile.recipient.email, true)));
    records.push(OutboxRecord::Email(email(alarm, profile, staff_email, false)));
}

/// One alarm email; `to_vendor` picks the label and greeting.
fn email(alarm: &CartAlarm, profile: &Profile, to: &str, to_vendor: bool) -> EmailRequested {
    let raised = alarm.state == CartAlarmState::Raised;
    let label = match (raised, to_vendor) {
        (true, true) => "raised-vendor",
        (true, false) => "raised-staff",
        (false, true) => "cleared-vendor",
        (false, false) => "cleared-staff",
    };
    let why = match alarm.cause {
        CartAlarmCause::ReportedMissing => "reportado como perdido",
        CartAlarmCause::Silent => "sin reportar su ubicación",
        CartAlarmCause::OutOfArea => "fuera de su comuna",
        CartAlarmCause::Unknown => "con una alarma",
    };
    let subject = if raised {
        format!("MAMOCHI: alarma de carro {} ({why})", profile.plate)
    } else {
        format!("MAMOCHI: carro ubicado {}", profile.plate)
    };
    let position = match (alarm.latitude, alarm.longitude) {
        (Some(latitude), Some(longitude)) => format!("Última posición conocida: {latitude:.5}, {longitude:.5}.\n"),
        _ => String::new(),
    };
    let greeting = if to_vendor {
        format!("Hola {}:", profile.recipient.full_name)
    } else {
        format!("Guardia: carro {} de {} (comuna {}).", profile.plate, profile.recipient.full_name, profile.comuna)
    };
    let what = if raised {
        format!("El carro {} está {why}.", profile.plate)
    } else {
        format!("El carro {} ya no está {why}: la alarma se cerró.", profile.plate)
    };
    EmailRequested {
        message_id: derived_id(label, alarm.incident_id),
        to: to.to_string(),
        subject,
        body_text: format!(
            "{greeting}\n\n{what}\n{detail}\n{position}Incidente: {incident}\n\n\
             MAMOCHI, gremio de Maestros Motehuesilleros de Chile\n",
            detail = alarm.detail,
            incident = alarm.incident_id,
        ),
        category: if raised { CATEGORY_RAISED } else { CATEGORY_CLEARED }.to_string(),
        requested_at: alarm.decided_at,
        sealed_secret: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derived::Recipient;

    fn profile() -> Profile {
        Profile {
            recipient: Recipient { email: "rosa@example.cl".into(), full_name: "Rosa Pérez".into() },
            plate: "BCDF12".into(),
            comuna: "Ñuñoa".into(),
            centre: mamochi_rules::comuna::centre("Ñuñoa"),
        }
    }

    fn alarm(state: CartAlarmState) -> CartAlarm {
        let incident_id = Uuid::new_v4();
        CartAlarm {
            event_id: derived_id("raised", incident_id),
            incident_id,
            vendor_id: Uuid::new_v4(),
            cause: CartAlarmCause::OutOfArea,
            state,
            evidence_at: Utc::now(),
            decided_at: Utc::now(),
            latitude: Some(-33.7),
            longitude: Some(-70.6),
            distance_m: Some(30_000.0),
            detail: "A 30.0 km del centro de Ñuñoa.".into(),
        }
    }

    #[test]
    fn incident_ids_follow_what_opened_them() {
        let event = Uuid::new_v4();
        let vendor = Uuid::new_v4();
        let at = Utc::now();

        assert_eq!(incident_id(CartAlarmCause::OutOfArea, event), incident_id(CartAlarmCause::OutOfArea, event));
        assert_ne!(incident_id(CartAlarmCause::OutOfArea, event), incident_id(CartAlarmCause::ReportedMissing, event));
        assert_eq!(silent_incident_id(vendor, at), silent_incident_id(vendor, at));
        assert_ne!(silent_incident_id(vendor, at), silent_incident_id(vendor, at + chrono::Duration::seconds(1)));
    }

    #[test]
    fn a_raised_alarm_derives_its_record_and_two_emails_with_derived_ids() {
        let raised = alarm(CartAlarmState::Raised);
        let mut records = Vec::new();

        derive(&raised, &profile(), "guardia@mamochi.cl", &mut records);

        let [OutboxRecord::Alarm(record), OutboxRecord::Email(vendor), OutboxRecord::Email(staff)] = records.as_slice()
        else {
            panic!("an alarm and two emails: {records:?}");
        };
        assert_eq!(record, &raised);
        assert_eq!(vendor.message_id, derived_id("raised-vendor", raised.incident_id));
        assert_eq!(staff.message_id, derived_id("raised-staff", raised.incident_id));
        assert_eq!((vendor.to.as_str(), staff.to.as_str()), ("rosa@example.cl", "guardia@mamochi.cl"));
        for email in [vendor, staff] {
            assert!(email.subject.starts_with("MAMOCHI: alarma de carro"), "{}", email.subject);
            assert_eq!(email.category, "cart_alarm");
            assert!(email.body_text.contains("A 30.0 km del centro de Ñuñoa."), "{}", email.body_text);
        }
        assert!(vendor.body_text.starts_with("Hola Rosa Pérez:"), "{}", vendor.body_text);
        assert!(staff.body_text.contains("comuna Ñuñoa"), "{}", staff.body_text);
    }

    #[test]
    fn a_cleared_alarm_says_the_cart_was_found() {
        let cleared = alarm(CartAlarmState::Cleared);
        let mut records = Vec::new();

        derive(&cleared, &profile(), "guardia@mamochi.cl", &mut records);

        let emails: Vec<&EmailRequested> = records
            .iter()
            .filter_map(|record| match record {
                OutboxRecord::Email(email) => Some(email),
                _ => None,
            })
            .collect();
        assert_eq!(emails.len(), 2);
        assert_eq!(emails[0].message_id, derived_id("cleared-vendor", cleared.incident_id));
        assert_eq!(emails[1].message_id, derived_id("cleared-staff", cleared.incident_id));
        for email in emails {
            assert!(email.subject.starts_with("MAMOCHI: carro ubicado"), "{}", email.subject);
            assert_eq!(email.category, "cart_alarm_cleared");
        }
    }
}
