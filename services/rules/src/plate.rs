//! The Chilean vehicle plate: the old form (two letters, four digits: AB1234)
//! or the current one (four consonants from BCDFGHJKLPRSTVWXYZ, two digits:
//! BCDF12). Separators (space, dot, dash, middle dot) are optional and case
//! does not matter; the normal form is upper case without separators.
//! The gateway accepts plates with [`normalise`]; whatever generates plates
//! (tests, the demo, the benchmark) can draw valid ones from [`current`].

/// Letters the current plates use: no vowels, no M, N, Ñ or Q.
pub const CURRENT_LETTERS: &str = "BCDFGHJKLPRSTVWXYZ";

/// How many current-format plates exist: 18⁴ letter groups times 100.
pub const CURRENT_PLATES: u64 = 18 * 18 * 18 * 18 * 100;

/// Why a written plate was refused; the message is shown to the applicant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a plate like AB1234 or BCDF12")]
pub struct PlateError;

/// A written plate in its normal form (`BCDF12`, `AB1234`), or why it is refused.
pub fn normalise(raw: &str) -> Result<String, PlateError> {
    let plate: String =
        raw.trim().chars().filter(|c| !matches!(c, ' ' | '.' | '-' | '·')).collect::<String>().to_uppercase();
    let bytes = plate.as_bytes();
    let digits_from = |i: usize| bytes.len() == 6 && bytes[i..].iter().all(u8::is_ascii_digit);
    let old = digits_from(2) && bytes[..2].iter().all(u8::is_ascii_uppercase);
    let current = digits_from(4) && bytes[..4].iter().all(|b| CURRENT_LETTERS.as_bytes().contains(b));
    if old || current {
        Ok(plate)
    } else {
        Err(PlateError)
    }
}

/// The current-format plate number `code` (taken modulo [`CURRENT_PLATES`]):
/// distinct codes below [`CURRENT_PLATES`] give distinct plates, each in
/// normal form.
pub fn current(code: u64) -> String {
    let letters = CURRENT_LETTERS.as_bytes();
    let mut rest = code % CURRENT_PLATES;
    let mut plate = String::with_capacity(6);
    for _ in 0..4 {
        // `rest % 18` indexes the 18 letters; the cast cannot truncate.
        plate.push(char::from(letters[(rest % 18) as usize]));
        rest /= 18;
    }
    format!("{plate}{rest:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_plates_with_any_separator_normalise() {
        for raw in ["AB1234", "ab-1234", "AB.12.34", "AB 12 34", "ab·12·34"] {
            assert_eq!(normalise(raw), Ok("AB1234".into()), "{raw}");
        }
    }

    #[test]
    fn current_plates_with_any_separator_normalise() {
        for raw in ["BCDF12", "bcdf12", "BC-DF-12", "BC.DF.12", "bc df 12"] {
            assert_eq!(normalise(raw), Ok("BCDF12".into()), "{raw}");
        }
    }

    #[test]
    fn vowels_and_wrong_shapes_are_refused() {
        for raw in ["", "BADF12", "BCMF12", "BCDF1", "BCDF123", "A1234", "ABC123", "12ABCD", "ÑB1234", "BCDF1A"] {
            assert_eq!(normalise(raw), Err(PlateError), "{raw}");
        }
    }

    #[test]
    fn generated_plates_are_valid_normal_and_distinct() {
        let codes = [0, 1, 17, 18, 104_975, 104_976, CURRENT_PLATES - 1];
        let plates: Vec<String> = codes.iter().map(|&code| current(code)).collect();
        for plate in &plates {
            assert_eq!(normalise(plate).as_ref(), Ok(plate), "{plate}");
        }
        let distinct: std::collections::HashSet<&String> = plates.iter().collect();
        assert_eq!(distinct.len(), codes.len());
        assert_eq!(current(0), "BBBB00");
        assert_eq!(current(CURRENT_PLATES), current(0), "codes wrap at CURRENT_PLATES");
    }
}
