//! The Chilean phone number: a 9-digit mobile starting with 9, or any 9-digit
//! national number written with the +56 prefix. Spaces, dashes, dots and
//! parentheses are ignored; the normal form is E.164: "+569XXXXXXXX",
//! "+56XXXXXXXXX". The gateway accepts phones with [`normalise`]; whatever
//! generates them (tests, the demo, the benchmark) can use [`mobile`].

/// Why a written phone number was refused; the message is shown to the applicant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("must be a mobile number like 9 1234 5678 or start with +56")]
    NoPrefix,
    #[error("must have 9 digits after the +56 prefix")]
    WrongLength,
}

/// A written phone number in E.164 (`+56912345678`), or why it is refused.
pub fn normalise(raw: &str) -> Result<String, PhoneError> {
    let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
    let national = match compact.strip_prefix("+56") {
        Some(rest) => rest,
        None if compact.starts_with('9') => compact.as_str(),
        None => return Err(PhoneError::NoPrefix),
    };
    if national.len() != 9 || !national.bytes().all(|b| b.is_ascii_digit()) || national.starts_with('0') {
        return Err(PhoneError::WrongLength);
    }
    Ok(format!("+56{national}"))
}

/// The mobile number with subscriber part `subscriber` (taken modulo 10⁸),
/// in normal form: distinct subscribers below 10⁸ give distinct numbers.
pub fn mobile(subscriber: u64) -> String {
    format!("+569{:08}", subscriber % 100_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobiles_with_and_without_prefix_normalise_alike() {
        for raw in ["912345678", "9 1234 5678", "+56 9 1234 5678", "+56-9-1234-5678", "+56912345678"] {
            assert_eq!(normalise(raw), Ok("+56912345678".into()), "{raw}");
        }
    }

    #[test]
    fn a_landline_needs_the_prefix() {
        assert_eq!(normalise("+56 2 2345 6789"), Ok("+56223456789".into()));
        assert_eq!(normalise("223456789"), Err(PhoneError::NoPrefix));
    }

    #[test]
    fn wrong_lengths_and_letters_are_refused() {
        for raw in ["", "91234567", "9123456789", "+5691234567", "+56 9 1234 567x", "+54 9 1234 5678", "+56012345678"] {
            assert!(normalise(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn generated_mobiles_are_valid_and_normal() {
        for subscriber in [0, 7, 12_345_678, 99_999_999, 123_456_789_012] {
            let phone = mobile(subscriber);
            assert_eq!(normalise(&phone).as_ref(), Ok(&phone), "{phone}");
        }
        assert_ne!(mobile(1), mobile(2));
    }
}
