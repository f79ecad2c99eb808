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
pub mod position;
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
pub use position::{Position, PositionFields};
pub use registration::{NewRegistration, PaymentReference};
pub use review::ReviewReason;
pub use rut::Rut;
pub use sale::{NewSale, PaymentMethod, Quantity, UnitPriceClp};
pub use status::StatusFilter;

/// Declares a newtype for a piece of personal data that one of the guild's
/// rules (mamochi-rules) normalises: `parse` applies the rule and keeps its
/// normal form, a refusal carries the rule's reason, and `Debug` (which a
/// stray `?value` in a log line prints) shows the type only.
macro_rules! personal_data {
    ($(#[$doc:meta])* $name:ident, $rule:path) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, $crate::domain::Invalid> {
                $rule(raw).map(Self).map_err(|error| $crate::domain::Invalid::new(error.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}
use personal_data;

/// Why a value was refused: a sentence for the client, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
