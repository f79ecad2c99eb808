//! A Chilean phone number: a 9-digit mobile starting with 9, or any 9-digit
//! national number written with the +56 prefix. Spaces, dashes, dots and
//! parentheses are ignored. Normalised to E.164: "+569XXXXXXXX", "+56XXXXXXXXX".

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
        let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
        let national = match compact.strip_prefix("+56") {
            Some(rest) => rest,
            None if compact.starts_with('9') => compact.as_str(),
            None => return Err(Invalid::new("must be a mobile number like 9 1234 5678 or start with +56")),
        };
        if national.len() != 9 || !national.bytes().all(|b| b.is_ascii_digit()) || national.starts_with('0') {
            return Err(Invalid::new("must have 9 digits after the +56 prefix"));
        }
        Ok(Self(format!("+56{national}")))
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

    fn normalised(raw: &str) -> Result<String, Invalid> {
        Phone::parse(raw).map(|phone| phone.as_str().to_string())
    }

    #[test]
    fn mobiles_with_and_without_prefix_normalise_alike() {
        for raw in ["912345678", "9 1234 5678", "+56 9 1234 5678", "+56-9-1234-5678", "+56912345678"] {
            assert_eq!(normalised(raw), Ok("+56912345678".into()), "{raw}");
        }
    }

    #[test]
    fn a_landline_needs_the_prefix() {
        assert_eq!(normalised("+56 2 2345 6789"), Ok("+56223456789".into()));
        assert!(Phone::parse("223456789").is_err());
    }

    #[test]
    fn wrong_lengths_and_letters_are_refused() {
        for raw in ["", "91234567", "9123456789", "+5691234567", "+56 9 1234 567x", "+54 9 1234 5678", "+56012345678"] {
            assert!(Phone::parse(raw).is_err(), "{raw}");
        }
    }
}
