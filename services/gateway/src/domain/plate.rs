//! A Chilean vehicle plate: the old form (two letters, four digits: AB1234)
//! or the current one (four consonants from BCDFGHJKLPRSTVWXYZ, two digits:
//! BCDF12). Separators (space, dot, dash) are optional and case does not
//! matter. Normalised to upper case without separators.

use super::Invalid;

/// Letters the current plates use: no vowels, no M, N, Ñ or Q.
const CURRENT_LETTERS: &str = "BCDFGHJKLPRSTVWXYZ";

#[derive(Clone, PartialEq, Eq)]
pub struct CartPlate(String);

/// Personal data: `Debug`, which a stray `?value` in a log line prints,
/// shows the type only.
impl std::fmt::Debug for CartPlate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CartPlate(<redacted>)")
    }
}

impl CartPlate {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let plate: String =
            raw.trim().chars().filter(|c| !matches!(c, ' ' | '.' | '-' | '·')).collect::<String>().to_uppercase();
        let bytes = plate.as_bytes();
        let digits_from = |i: usize| bytes.len() == 6 && bytes[i..].iter().all(u8::is_ascii_digit);
        let old = digits_from(2) && bytes[..2].iter().all(u8::is_ascii_uppercase);
        let current = digits_from(4) && bytes[..4].iter().all(|b| CURRENT_LETTERS.as_bytes().contains(b));
        if old || current {
            Ok(Self(plate))
        } else {
            Err(Invalid::new("must be a plate like AB1234 or BCDF12"))
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
    fn debug_hides_the_value() {
        let value = CartPlate::parse("BC-DF-12").expect("valid");

        assert_eq!(format!("{value:?}"), "CartPlate(<redacted>)");
    }

    fn normalised(raw: &str) -> Result<String, Invalid> {
        CartPlate::parse(raw).map(|plate| plate.as_str().to_string())
    }

    #[test]
    fn old_plates_with_any_separator_normalise() {
        for raw in ["AB1234", "ab-1234", "AB.12.34", "AB 12 34", "ab·12·34"] {
            assert_eq!(normalised(raw), Ok("AB1234".into()), "{raw}");
        }
    }

    #[test]
    fn current_plates_with_any_separator_normalise() {
        for raw in ["BCDF12", "bcdf12", "BC-DF-12", "BC.DF.12", "bc df 12"] {
            assert_eq!(normalised(raw), Ok("BCDF12".into()), "{raw}");
        }
    }

    #[test]
    fn vowels_and_wrong_shapes_are_refused() {
        for raw in ["", "BADF12", "BCMF12", "BCDF1", "BCDF123", "A1234", "ABC123", "12ABCD", "ÑB1234", "BCDF1A"] {
            assert!(CartPlate::parse(raw).is_err(), "{raw}");
        }
    }
}
