//! A Chilean phone number, normalised to E.164 ("+569XXXXXXXX"). The rule
//! itself is mamochi-rules' (`phone::normalise`); this newtype is what the
//! gateway's handlers accept.

use super::Invalid;

#[derive(Clone, PartialEq, Eq)]
pub struct Phone(String);

/// Personal data: `Debug`, which a stray `?value` in a log line prints,
/// shows the type only.
impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Phone(<redacted>)")
    }
}

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        mamochi_rules::phone::normalise(raw).map(Self).map_err(|error| Invalid::new(error.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let value = Phone::parse("+56912345678").expect("valid");

        assert_eq!(format!("{value:?}"), "Phone(<redacted>)");
    }

    #[test]
    fn parse_keeps_the_normal_form_and_refuses_with_the_rules_reason() {
        assert_eq!(Phone::parse("9 1234 5678").map(|phone| phone.as_str().to_string()), Ok("+56912345678".into()));
        assert_eq!(Phone::parse("91234567"), Err(Invalid::new("must have 9 digits after the +56 prefix")));
    }
}
