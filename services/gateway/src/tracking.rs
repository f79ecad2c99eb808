//! The bodies of the cart-tracking routes, parsed field by field so every
//! refusal names its field: a location ping (`POST /v1/carts/me/locations`)
//! and a missing/found report (`POST /v1/carts/me/reports`, and the staff
//! one). Once parsed, a value is in range (the position's ranges live in
//! [`crate::domain::position`], shared with a sale's location) and
//! `occurred_at` is within the accepted window, to the millisecond the
//! event carries.

use chrono::{DateTime, Duration, Utc};
use mamochi_events::CartTrackingEventKind;

use crate::body::{FieldError, JsonObject};
use crate::domain::{Position, PositionFields};

/// How far ahead of the platform clock a ping may claim to be (clock skew).
pub const MAX_FUTURE: Duration = Duration::seconds(60);
/// Longest note on a report, in characters.
pub const MAX_NOTE_CHARS: usize = 500;

/// A valid location ping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewLocation {
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_m: f64,
    pub occurred_at: DateTime<Utc>,
}

impl NewLocation {
    /// Parses a ping against platform time `now`; `max_age` is
    /// `gateway.location_max_age_secs`.
    pub fn parse(body: &JsonObject, now: DateTime<Utc>, max_age: Duration) -> Result<Self, FieldError> {
        let Position { latitude, longitude, accuracy_m } = Position::parse(body, PositionFields::PING)?;
        // A ping is about where the cart is: its uncertainty is part of it.
        let accuracy_m = accuracy_m.ok_or_else(|| FieldError::missing(PositionFields::PING.accuracy_m))?;
        let raw: String = body.required("occurred_at")?;
        let occurred_at = DateTime::parse_from_rfc3339(&raw)
            .map_err(|_| {
                FieldError::invalid("occurred_at", "must be an RFC 3339 instant such as 2026-11-22T15:04:05-03:00")
            })?
            .with_timezone(&Utc);
        if occurred_at > now + MAX_FUTURE {
            return Err(FieldError::invalid("occurred_at", "must not be more than 60 seconds in the future"));
        }
        if occurred_at < now - max_age {
            return Err(FieldError::invalid(
                "occurred_at",
                format!("must not be more than {} seconds old", max_age.num_seconds()),
            ));
        }
        let occurred_at = DateTime::from_timestamp_millis(occurred_at.timestamp_millis())
            .ok_or_else(|| FieldError::invalid("occurred_at", "is out of range"))?;
        Ok(Self { latitude, longitude, accuracy_m, occurred_at })
    }
}

/// A valid missing/found report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    /// MISSING or FOUND.
    pub kind: CartTrackingEventKind,
    pub note: Option<String>,
}

impl NewReport {
    pub fn parse(body: &JsonObject) -> Result<Self, FieldError> {
        let raw: String = body.required("kind")?;
        let kind = match raw.as_str() {
            "missing" => CartTrackingEventKind::Missing,
            "found" => CartTrackingEventKind::Found,
            _ => return Err(FieldError::invalid("kind", "must be `missing` or `found`")),
        };
        let note: Option<String> = body.optional("note")?;
        if note.as_ref().is_some_and(|note| note.chars().count() > MAX_NOTE_CHARS) {
            return Err(FieldError::invalid("note", "must be at most 500 characters"));
        }
        Ok(Self { kind, note })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn body(value: Value) -> JsonObject {
        match value {
            Value::Object(map) => JsonObject::from(map),
            _ => JsonObject::default(),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z").map(|t| t.with_timezone(&Utc)).expect("instant")
    }

    fn ping(change: impl FnOnce(&mut Value)) -> Result<NewLocation, &'static str> {
        let mut value = json!({"latitude": -33.45, "longitude": -70.66, "accuracy_m": 15, "occurred_at": "2026-12-01T08:59:30-03:00"});
        change(&mut value);
        NewLocation::parse(&body(value), now(), Duration::seconds(3_600)).map_err(|error| error.field)
    }

    #[test]
    fn a_valid_ping_is_read_in_utc() {
        let location = ping(|_| {}).expect("valid");
        assert_eq!(location.occurred_at.to_rfc3339(), "2026-12-01T11:59:30+00:00");
        assert_eq!((location.latitude, location.longitude, location.accuracy_m), (-33.45, -70.66, 15.0));
    }

    #[test]
    fn every_bad_value_names_its_field() {
        assert_eq!(ping(|v| v["latitude"] = json!(90.5)), Err("latitude"));
        assert_eq!(ping(|v| v["latitude"] = json!("south")), Err("latitude"));
        assert_eq!(ping(|v| v["longitude"] = json!(-180.01)), Err("longitude"));
        assert_eq!(ping(|v| v["accuracy_m"] = json!(0)), Err("accuracy_m"));
        assert_eq!(ping(|v| v["accuracy_m"] = json!(10_000.5)), Err("accuracy_m"));
        assert_eq!(ping(|v| v["occurred_at"] = json!("2026-12-01T12:01:01Z")), Err("occurred_at"));
        assert_eq!(ping(|v| v["occurred_at"] = json!("2026-12-01T10:59:59Z")), Err("occurred_at"));
        assert_eq!(ping(|v| v["occurred_at"] = json!("noon")), Err("occurred_at"));
        assert_eq!(ping(|v| v["longitude"] = Value::Null), Err("longitude"), "null is missing");
        assert!(ping(|v| v["occurred_at"] = json!("2026-12-01T12:01:00Z")).is_ok(), "60 s of skew is allowed");
        assert!(ping(|v| v["accuracy_m"] = json!(10_000)).is_ok());
    }

    #[test]
    fn reports_are_missing_or_found_with_a_short_note() {
        let report = NewReport::parse(&body(json!({"kind": "missing", "note": "en la feria"}))).expect("valid");
        assert_eq!(report.kind, CartTrackingEventKind::Missing);
        assert_eq!(NewReport::parse(&body(json!({"kind": "found"}))).map(|r| r.note), Ok(None));
        assert_eq!(NewReport::parse(&body(json!({"kind": "stolen"}))).map_err(|e| e.field), Err("kind"));
        assert_eq!(NewReport::parse(&body(json!({}))).map_err(|e| e.field), Err("kind"));
        let long = "x".repeat(501);
        assert_eq!(NewReport::parse(&body(json!({"kind": "found", "note": long}))).map_err(|e| e.field), Err("note"));
    }
}
