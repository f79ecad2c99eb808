//! A sale as a vendor reports it: quantity, unit price, payment method,
//! when it happened and, optionally, where, each within the platform's
//! limits (a location by the same rules as a cart's location ping).

use chrono::{DateTime, Duration, Utc};

use super::{Invalid, Position, PositionFields};
use crate::body::{FieldError, JsonObject};

/// Servings sold in one sale: 1 to 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i32);

impl Quantity {
    pub fn parse(raw: i64) -> Result<Self, Invalid> {
        i32::try_from(raw)
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .map(Self)
            .ok_or_else(|| Invalid::new("must be an integer from 1 to 1000"))
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// Price of one serving in whole Chilean pesos: 1 to 1,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitPriceClp(i64);

impl UnitPriceClp {
    pub fn parse(raw: i64) -> Result<Self, Invalid> {
        if (1..=1_000_000).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(Invalid::new("must be an integer from 1 to 1000000"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// How the customer paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentMethod {
    Cash,
    Debit,
    Credit,
    Transfer,
}

impl PaymentMethod {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "cash" => Ok(Self::Cash),
            "debit" => Ok(Self::Debit),
            "credit" => Ok(Self::Credit),
            "transfer" => Ok(Self::Transfer),
            _ => Err(Invalid::new("must be one of cash, debit, credit, transfer")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cash => "cash",
            Self::Debit => "debit",
            Self::Credit => "credit",
            Self::Transfer => "transfer",
        }
    }

    pub fn to_event(self) -> mamochi_events::PaymentMethod {
        match self {
            Self::Cash => mamochi_events::PaymentMethod::Cash,
            Self::Debit => mamochi_events::PaymentMethod::Debit,
            Self::Credit => mamochi_events::PaymentMethod::Credit,
            Self::Transfer => mamochi_events::PaymentMethod::Transfer,
        }
    }
}

/// How far ahead of the platform clock a sale may claim to be (clock skew).
pub const MAX_FUTURE: Duration = Duration::minutes(5);
/// How old a reported sale may be.
pub const MAX_AGE: Duration = Duration::days(30);

/// A valid sale. `occurred_at` is `None` when the vendor left it out; the
/// handler then uses platform time. `location` is `None` when the vendor
/// sent none (its `accuracy_m` may be left out too).
#[derive(Debug, Clone, PartialEq)]
pub struct NewSale {
    pub quantity: Quantity,
    pub unit_price_clp: UnitPriceClp,
    pub payment_method: PaymentMethod,
    pub occurred_at: Option<DateTime<Utc>>,
    pub location: Option<Position>,
}

impl NewSale {
    /// Parses the body of `POST /v1/sales` against platform time `now`.
    pub fn parse(body: &JsonObject, now: DateTime<Utc>) -> Result<Self, FieldError> {
        let quantity =
            Quantity::parse(body.required("quantity")?).map_err(|error| FieldError::invalid("quantity", error))?;
        let unit_price_clp = UnitPriceClp::parse(body.required("unit_price_clp")?)
            .map_err(|error| FieldError::invalid("unit_price_clp", error))?;
        let method: String = body.required("payment_method")?;
        let payment_method =
            PaymentMethod::parse(&method).map_err(|error| FieldError::invalid("payment_method", error))?;
        let occurred_at = match body.optional::<String>("occurred_at")? {
            None => None,
            Some(raw) => Some(parse_occurred_at(&raw, now).map_err(|error| FieldError::invalid("occurred_at", error))?),
        };
        let location = match body.object("location")? {
            None => None,
            Some(location) => Some(Position::parse(&location, PositionFields::SALE)?),
        };
        Ok(Self { quantity, unit_price_clp, payment_method, occurred_at, location })
    }

    /// quantity × unit price; at most 10⁹, far from overflowing.
    pub fn total_clp(&self) -> i64 {
        i64::from(self.quantity.get()) * self.unit_price_clp.get()
    }
}

/// An RFC 3339 instant within [now − 30 days, now + 5 minutes], to the millisecond
/// (what the event carries).
fn parse_occurred_at(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, Invalid> {
    let instant = DateTime::parse_from_rfc3339(raw)
        .map_err(|_| Invalid::new("must be an RFC 3339 instant such as 2026-11-22T15:04:05-03:00"))?
        .with_timezone(&Utc);
    if instant > now + MAX_FUTURE {
        return Err(Invalid::new("must not be more than 5 minutes in the future"));
    }
    if instant < now - MAX_AGE {
        return Err(Invalid::new("must not be more than 30 days old"));
    }
    DateTime::from_timestamp_millis(instant.timestamp_millis()).ok_or_else(|| Invalid::new("is out of range"))
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
        DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z").map(|t| t.with_timezone(&Utc)).expect("instant")
    }

    #[test]
    fn a_valid_sale_parses_and_totals() {
        let sale = NewSale::parse(
            &body(json!({"quantity": 3, "unit_price_clp": 1500, "payment_method": "debit", "occurred_at": "2026-11-22T08:30:00-03:00"})),
            now(),
        )
        .expect("valid");
        assert_eq!(sale.total_clp(), 4500);
        assert_eq!(sale.payment_method, PaymentMethod::Debit);
        assert_eq!(sale.occurred_at.map(|t| t.to_rfc3339()), Some("2026-11-22T11:30:00+00:00".into()));
    }

    #[test]
    fn quantities_and_prices_outside_their_ranges_are_refused() {
        assert!(Quantity::parse(0).is_err());
        assert!(Quantity::parse(1001).is_err());
        assert!(Quantity::parse(i64::MAX).is_err());
        assert!(Quantity::parse(1000).is_ok());
        assert!(UnitPriceClp::parse(-1500).is_err());
        assert!(UnitPriceClp::parse(1_000_001).is_err());
        assert!(UnitPriceClp::parse(1).is_ok());
    }

    #[test]
    fn unknown_methods_and_instants_out_of_the_window_are_refused() {
        assert!(PaymentMethod::parse("bitcoin").is_err());
        assert!(PaymentMethod::parse("CASH").is_err());
        let at = |raw: &str| {
            NewSale::parse(
                &body(json!({"quantity": 1, "unit_price_clp": 1, "payment_method": "cash", "occurred_at": raw})),
                now(),
            )
            .map_err(|e| e.field)
        };
        assert_eq!(at("2026-11-22T12:06:00Z"), Err("occurred_at"));
        assert_eq!(at("2026-10-22T11:59:00Z"), Err("occurred_at"));
        assert_eq!(at("yesterday"), Err("occurred_at"));
        assert!(at("2026-11-22T12:04:00Z").is_ok());
    }

    #[test]
    fn a_location_is_optional_and_checked_field_by_field() {
        let with = |location: Value| {
            NewSale::parse(
                &body(json!({"quantity": 1, "unit_price_clp": 1, "payment_method": "cash", "location": location})),
                now(),
            )
        };
        let sale = with(json!({"latitude": -33.45, "longitude": -70.66, "accuracy_m": 12.5})).expect("valid");
        assert_eq!(sale.location, Some(Position { latitude: -33.45, longitude: -70.66, accuracy_m: Some(12.5) }));
        assert_eq!(with(Value::Null).map(|sale| sale.location), Ok(None));
        let no_accuracy = with(json!({"latitude": 0, "longitude": 0})).expect("accuracy may be left out");
        assert_eq!(no_accuracy.location.and_then(|location| location.accuracy_m), None);
        let field = |location: Value| with(location).map_err(|error| error.field);
        assert_eq!(field(json!({"latitude": -90.5, "longitude": 0})), Err("location.latitude"));
        assert_eq!(field(json!({"latitude": 0, "longitude": 180.5})), Err("location.longitude"));
        assert_eq!(field(json!({"latitude": 0, "longitude": 0, "accuracy_m": 0})), Err("location.accuracy_m"));
        assert_eq!(field(json!({"longitude": 0})), Err("location.latitude"));
        assert_eq!(field(json!([-33.45, -70.66])), Err("location"));
    }
}
