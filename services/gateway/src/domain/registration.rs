//! A membership form as the gateway accepts it: every field parsed, and the
//! payment rule enforced — a paid form names its payment reference, a
//! standard form must not carry one.

use super::{CartPlate, Comuna, Email, FullName, Invalid, Phone, Rut};
use crate::body::{FieldError, JsonObject};

/// The reference of a priority-review payment: 4 to 64 printable characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReference(String);

impl PaymentReference {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        let length = trimmed.chars().count();
        if !(4..=64).contains(&length) || trimmed.chars().any(char::is_control) {
            return Err(Invalid::new("must be 4 to 64 printable characters"));
        }
        Ok(Self(trimmed.to_string()))
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
            "paid": true, "payment_reference": "TX-1234"
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
    fn each_bad_field_is_named() {
        for (field, value) in [
            ("rut", json!("12.345.678-9")),
            ("full_name", json!(42)),
            ("email", json!("nope")),
            ("phone", json!("12345")),
            ("comuna", json!("")),
            ("cart_plate", json!("AEIOU1")),
            ("paid", json!("yes")),
        ] {
            let mut form = valid();
            form[field] = value;
            assert_eq!(NewRegistration::parse(&body(form)).map_err(|e| e.field), Err(field));
        }
    }
}
