//! A membership form as the gateway accepts it: every field parsed, and the
//! payment rule enforced — a paid form names its payment reference, in the
//! documented format, and a standard form must not carry one. (That a
//! reference is used once only is checked against PostgreSQL at submission,
//! see `store::payment_references`.)

use super::{CartPlate, Comuna, Email, FullName, Invalid, Phone, Rut};
use crate::body::{FieldError, JsonObject};

/// The reference of a priority-review payment, as the payment receipt
/// prints it: a channel code of 2 to 10 capital letters or digits, a hyphen,
/// and the operation number, 6 to 20 digits ([`PAYMENT_REFERENCE_PATTERN`],
/// e.g. `TX-00123456`, `WEBPAY-20261201004711`). Taken exactly as sent: no
/// trimming or case folding, so the stored reference is the one the client
/// sent and two spellings of one payment cannot both pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReference(String);

/// The format of a payment reference, as a regular expression.
pub const PAYMENT_REFERENCE_PATTERN: &str = "^[A-Z0-9]{2,10}-[0-9]{6,20}$";

impl PaymentReference {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let valid = raw.split_once('-').is_some_and(|(channel, number)| {
            (2..=10).contains(&channel.len())
                && channel.bytes().all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit())
                && (6..=20).contains(&number.len())
                && number.bytes().all(|byte| byte.is_ascii_digit())
        });
        if !valid {
            return Err(Invalid::new(
                "must be a channel code (2 to 10 capital letters or digits), a hyphen and the operation number \
                 (6 to 20 digits), e.g. TX-00123456",
            ));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A valid form, ready to become a `RegistrationSubmitted` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRegistration {
    pub full_name: FullName,
    pub rut: Rut,
    pub email: Email,
    pub phone: Phone,
    pub comuna: Comuna,
    pub cart_plate: CartPlate,
    /// `Some` exactly when the form is paid.
    pub payment_reference: Option<PaymentReference>,
}

impl NewRegistration {
    /// Parses the body of `POST /v1/registrations`; the first bad field wins.
    pub fn parse(body: &JsonObject) -> Result<Self, FieldError> {
        fn field<T>(
            body: &JsonObject,
            name: &'static str,
            parse: impl Fn(&str) -> Result<T, Invalid>,
        ) -> Result<T, FieldError> {
            let raw: String = body.required(name)?;
            parse(&raw).map_err(|error| FieldError::invalid(name, error))
        }
        let full_name = field(body, "full_name", FullName::parse)?;
        let rut = field(body, "rut", Rut::parse)?;
        let email = field(body, "email", Email::parse)?;
        let phone = field(body, "phone", Phone::parse)?;
        let comuna = field(body, "comuna", Comuna::parse)?;
        let cart_plate = field(body, "cart_plate", CartPlate::parse)?;
        let paid: bool = body.required("paid")?;
        let payment_reference = if paid {
            Some(field(body, "payment_reference", PaymentReference::parse)?)
        } else if body.has("payment_reference") {
            return Err(FieldError::invalid("payment_reference", "must be absent or null when paid is false"));
        } else {
            None
        };
        Ok(Self { full_name, rut, email, phone, comuna, cart_plate, payment_reference })
    }

    pub fn paid(&self) -> bool {
        self.payment_reference.is_some()
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

    fn valid() -> Value {
        json!({
            "full_name": "Rosa Pérez", "rut": "12.345.678-5", "email": "Rosa@Example.cl",
            "phone": "9 1234 5678", "comuna": "Ñuñoa", "cart_plate": "bc-df-12",
            "paid": true, "payment_reference": "TX-00123456"
        })
    }

    #[test]
    fn a_valid_paid_form_is_normalised() {
        let form = NewRegistration::parse(&body(valid())).expect("valid");
        assert_eq!(form.rut.as_str(), "12345678-5");
        assert_eq!(form.email.as_str(), "rosa@example.cl");
        assert_eq!(form.phone.as_str(), "+56912345678");
        assert_eq!(form.cart_plate.as_str(), "BCDF12");
        assert!(form.paid());
    }

    #[test]
    fn a_paid_form_needs_a_reference_and_a_standard_one_must_not_have_one() {
        let mut paid = valid();
        paid["payment_reference"] = Value::Null;
        assert_eq!(NewRegistration::parse(&body(paid)).map_err(|e| e.field), Err("payment_reference"));

        let mut standard = valid();
        standard["paid"] = json!(false);
        assert_eq!(NewRegistration::parse(&body(standard.clone())).map_err(|e| e.field), Err("payment_reference"));
        standard["payment_reference"] = Value::Null;
        assert!(!NewRegistration::parse(&body(standard)).expect("valid standard form").paid());
    }

    #[test]
    fn a_payment_reference_matches_the_documented_format_exactly() {
        for good in ["TX-123456", "WEBPAY-20261201004711", "B2-12345678901234567890", "ABCDEFGHIJ-000000"] {
            assert_eq!(PaymentReference::parse(good).map(|r| r.as_str().to_string()), Ok(good.to_string()));
        }
        for bad in [
            "TX-991",                   // too few digits
            "tx-123456",                // lower case
            " TX-123456",               // not trimmed
            "T-123456",                 // channel too short
            "ABCDEFGHIJK-123456",       // channel too long
            "TX-123456789012345678901", // number too long
            "TX-12345a",
            "TX123456",
            "TX--123456",
            "TX-123456-7",
            "ÑU-123456",
        ] {
            assert!(PaymentReference::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        for (field, value) in [
            ("rut", json!("12.345.678-9")),
            ("full_name", json!(42)),
            ("email", json!("nope")),
            ("phone", json!("12345")),
            ("comuna", json!("")),
            ("cart_plate", json!("AEIOU1")),
            ("paid", json!("yes")),
            ("payment_reference", json!("TX-99")),
        ] {
            let mut form = valid();
            form[field] = value;
            assert_eq!(NewRegistration::parse(&body(form)).map_err(|e| e.field), Err(field));
        }
    }
}
