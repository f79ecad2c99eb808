//! A position on Earth as a cart's device reports it (WGS 84): latitude,
//! longitude and the radius of its uncertainty. The one home of their
//! ranges: a location ping (`POST /v1/carts/me/locations`) and a sale's
//! `location` (`POST /v1/sales`) obey the same rules, each refusal naming
//! the field as the body spells it (`latitude`, `location.latitude`).

use super::Invalid;
use crate::body::{FieldError, JsonObject};

/// Largest accepted uncertainty radius, in metres.
pub const MAX_ACCURACY_M: f64 = 10_000.0;

/// Degrees north, in [-90, 90].
pub fn latitude(raw: f64) -> Result<f64, Invalid> {
    degrees(raw, 90.0)
}

/// Degrees east, in [-180, 180].
pub fn longitude(raw: f64) -> Result<f64, Invalid> {
    degrees(raw, 180.0)
}

/// The radius of the position's uncertainty, in (0, 10000] metres: a device
/// that claims no uncertainty, or one of more than 10 km, says nothing about
/// where the cart is.
pub fn accuracy_m(raw: f64) -> Result<f64, Invalid> {
    if raw > 0.0 && raw <= MAX_ACCURACY_M {
        Ok(raw)
    } else {
        Err(Invalid::new("must be more than 0 and at most 10000 metres"))
    }
}

fn degrees(raw: f64, limit: f64) -> Result<f64, Invalid> {
    if (-limit..=limit).contains(&raw) {
        Ok(raw)
    } else {
        Err(Invalid::new(format!("must be between {} and {limit} degrees", -limit)))
    }
}

/// Where a body carries a position's fields, as its refusals name them.
#[derive(Debug, Clone, Copy)]
pub struct PositionFields {
    pub latitude: &'static str,
    pub longitude: &'static str,
    pub accuracy_m: &'static str,
}

impl PositionFields {
    /// A location ping: the fields at the top level of the body.
    pub const PING: Self = Self { latitude: "latitude", longitude: "longitude", accuracy_m: "accuracy_m" };
    /// A sale: the fields inside its `location` object
    /// ([`JsonObject::object`] names them so).
    pub const SALE: Self =
        Self { latitude: "location.latitude", longitude: "location.longitude", accuracy_m: "location.accuracy_m" };
}

/// A valid position. `accuracy_m` is `None` when the body left it out;
/// whether that is allowed is the caller's rule (a ping must say it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_m: Option<f64>,
}

impl Position {
    /// Reads latitude and longitude (required) and accuracy (optional), in
    /// that order; the first bad field wins.
    pub fn parse(body: &JsonObject, fields: PositionFields) -> Result<Self, FieldError> {
        let latitude =
            latitude(body.required(fields.latitude)?).map_err(|error| FieldError::invalid(fields.latitude, error))?;
        let longitude = longitude(body.required(fields.longitude)?)
            .map_err(|error| FieldError::invalid(fields.longitude, error))?;
        let accuracy_m = match body.optional(fields.accuracy_m)? {
            None => None,
            Some(raw) => Some(accuracy_m(raw).map_err(|error| FieldError::invalid(fields.accuracy_m, error))?),
        };
        Ok(Self { latitude, longitude, accuracy_m })
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

    #[test]
    fn ranges_include_their_limits() {
        assert_eq!(latitude(-90.0), Ok(-90.0));
        assert_eq!(latitude(90.0), Ok(90.0));
        assert!(latitude(90.000_001).is_err());
        assert_eq!(longitude(-180.0), Ok(-180.0));
        assert!(longitude(-180.01).is_err());
        assert!(accuracy_m(0.0).is_err(), "no uncertainty at all is not a measurement");
        assert_eq!(accuracy_m(MAX_ACCURACY_M), Ok(MAX_ACCURACY_M));
        assert!(accuracy_m(10_000.5).is_err());
        assert_eq!(latitude(91.0).map_err(|e| e.0), Err("must be between -90 and 90 degrees".to_string()));
    }

    #[test]
    fn refusals_name_the_field_as_the_body_spells_it() {
        let field = |value: Value, fields| Position::parse(&body(value), fields).map_err(|error| error.field);
        assert_eq!(field(json!({"latitude": 91, "longitude": 0}), PositionFields::PING), Err("latitude"));
        assert_eq!(
            field(json!({"location.latitude": 0, "location.longitude": 181}), PositionFields::SALE),
            Err("location.longitude")
        );
        assert_eq!(
            field(
                json!({"location.latitude": 0, "location.longitude": 0, "location.accuracy_m": -1}),
                PositionFields::SALE
            ),
            Err("location.accuracy_m")
        );
        assert_eq!(field(json!({"longitude": 0}), PositionFields::PING), Err("latitude"));
        let position = Position::parse(&body(json!({"latitude": -33.45, "longitude": -70.66})), PositionFields::PING);
        assert_eq!(position, Ok(Position { latitude: -33.45, longitude: -70.66, accuracy_m: None }));
    }
}
