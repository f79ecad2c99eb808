//! The `Idempotency-Key` header of `POST /v1/sales`: 1 to 128 visible ASCII
//! characters, compared exactly.

use super::Invalid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if (1..=128).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(raw.to_string()))
        } else {
            Err(Invalid::new("must be 1 to 128 visible ASCII characters"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_ascii_up_to_128_is_a_key() {
        assert!(IdempotencyKey::parse("sale-2026-11-22-0001").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(128)).is_ok());
    }

    #[test]
    fn empty_long_spaced_and_non_ascii_keys_are_refused() {
        for raw in [String::new(), "k".repeat(129), "two words".into(), "llave-ñ".into(), "tab\tkey".into()] {
            assert!(IdempotencyKey::parse(&raw).is_err(), "{raw}");
        }
    }
}
