//! The gateway's vocabulary: one newtype per concept, each with a `parse()`
//! that is the only way to build it (parse, don't validate). Once a value
//! exists it is valid and normalised, so handlers and events never re-check.
//!
//! Parsers here know nothing about JSON or field names; [`crate::body`] and
//! the forms in this module attach the field a failure belongs to.

pub mod comuna;
pub mod email;
pub mod full_name;
pub mod idempotency_key;
pub mod iso_week;
pub mod phone;
pub mod plate;
pub mod registration;
pub mod review;
pub mod rotation;
pub mod rut;
pub mod sale;
pub mod secret;
pub mod status;

pub use comuna::Comuna;
pub use email::Email;
pub use full_name::FullName;
pub use idempotency_key::IdempotencyKey;
pub use iso_week::IsoWeek;
pub use phone::Phone;
pub use plate::CartPlate;
pub use registration::{NewRegistration, PaymentReference};
pub use review::ReviewReason;
pub use rut::Rut;
pub use sale::{NewSale, PaymentMethod, Quantity, UnitPriceClp};
pub use status::StatusFilter;

/// Why a value was refused: a sentence for the client, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
