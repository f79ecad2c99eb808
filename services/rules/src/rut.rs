//! The Chilean RUT (national id) and its modulo-11 check digit.
//!
//! Accepted as written on paper ("12.345.678-5"), with only the dash
//! ("12345678-5") or bare ("123456785"), check digit `K` in either case;
//! normalised to digits, dash, check digit: "12345678-5", "7654321-K".
//! Every service checks and generates RUTs with these functions, so a RUT
//! one accepts the others accept too.

/// Why a written RUT was refused; the message is shown to the applicant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RutError {
    #[error("must not be empty")]
    Empty,
    #[error("must look like 12.345.678-5, 12345678-5 or 123456785")]
    Malformed,
    #[error("the check digit must be 0-9 or K")]
    BadCheckCharacter,
    #[error("must have 7 or 8 digits before the check digit")]
    WrongLength,
    #[error("the check digit does not match")]
    WrongCheckDigit,
}

/// A written RUT in its normal form (`12345678-5`), or why it is refused.
pub fn normalise(raw: &str) -> Result<String, RutError> {
    let text = raw.trim();
    let (body, check) = match text.rsplit_once('-') {
        Some((body, check)) => (body, check),
        None if !text.is_empty() => text.split_at(text.len() - text.chars().last().map_or(0, char::len_utf8)),
        None => return Err(RutError::Empty),
    };
    let digits = plain_digits(body)?;
    let check = match check {
        "k" | "K" => 'K',
        c if c.len() == 1 && c.bytes().all(|b| b.is_ascii_digit()) => c.chars().next().unwrap_or('?'),
        _ => return Err(RutError::BadCheckCharacter),
    };
    let digits = digits.trim_start_matches('0');
    if !(7..=8).contains(&digits.len()) {
        return Err(RutError::WrongLength);
    }
    if check_digit(digits) != Some(check) {
        return Err(RutError::WrongCheckDigit);
    }
    Ok(format!("{digits}-{check}"))
}

/// The body without thousands dots; dots, when used, must group by three.
fn plain_digits(body: &str) -> Result<String, RutError> {
    let groups: Vec<&str> = body.split('.').collect();
    if groups.iter().any(|g| g.is_empty() || !g.bytes().all(|b| b.is_ascii_digit())) {
        return Err(RutError::Malformed);
    }
    if groups.len() > 1 && (groups[0].len() > 3 || groups[1..].iter().any(|g| g.len() != 3)) {
        return Err(RutError::Malformed);
    }
    Ok(groups.concat())
}

/// The check digit of a RUT body (ASCII digits only, else `None`): modulo 11
/// with weights 2..7 from the right; 11 → '0', 10 → 'K'.
pub fn check_digit(digits: &str) -> Option<char> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .zip([2u32, 3, 4, 5, 6, 7].iter().cycle())
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    match 11 - sum % 11 {
        11 => Some('0'),
        10 => Some('K'),
        n => char::from_digit(n, 10),
    }
}

/// Whether a RUT already in normal form (`12345678-5`, `k` allowed) has
/// the right check digit; the written forms with dots are not accepted here.
pub fn check_digit_ok(rut: &str) -> bool {
    let Some((body, check)) = rut.split_once('-') else { return false };
    if body.len() > 8 {
        return false;
    }
    let mut given = check.chars();
    match (check_digit(body), given.next(), given.next()) {
        (Some(expected), Some(given), None) => expected == given.to_ascii_uppercase(),
        _ => false,
    }
}

/// The valid RUT, in normal form, whose body is `body` (`12345678-5` for
/// 12345678): how the benchmark, the demo and the tests make RUTs.
pub fn for_number(body: u32) -> String {
    let digits = body.to_string();
    // A u32's decimal digits always have a check digit.
    let check = check_digit(&digits).unwrap_or('0');
    format!("{digits}-{check}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalised(raw: &str) -> Result<String, RutError> {
        normalise(raw)
    }

    #[test]
    fn the_three_written_forms_normalise_alike() {
        for raw in ["12.345.678-5", "12345678-5", "123456785", " 12345678-5 "] {
            assert_eq!(normalised(raw), Ok("12345678-5".into()), "{raw}");
        }
    }

    #[test]
    fn a_k_check_digit_is_accepted_in_either_case() {
        // 10.000.013: weights give 11 - (sum % 11) = 10, so the check digit is K.
        assert_eq!(normalised("10.000.013-K"), Ok("10000013-K".into()));
        assert_eq!(normalised("10000013k"), Ok("10000013-K".into()));
    }

    #[test]
    fn a_seven_digit_rut_and_a_zero_check_digit_are_valid() {
        assert_eq!(normalised("7.654.321-6"), Ok("7654321-6".into()));
        assert_eq!(normalised("11.111.111-1"), Ok("11111111-1".into()));
        assert_eq!(normalised("10000004-0"), Ok("10000004-0".into()));
    }

    #[test]
    fn a_wrong_check_digit_is_refused() {
        assert!(normalise("12.345.678-9").is_err());
        assert!(normalise("12345678K").is_err());
    }

    #[test]
    fn malformed_ruts_are_refused() {
        for raw in
            ["", "-", "12.34.5678-5", "1234.5678-5", "12a45678-5", "12345678-55", "123-4", "12345678-", "١٢٣٤٥٦٧٨-5"]
        {
            assert!(normalise(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn known_ruts_get_their_check_digit() {
        assert_eq!(check_digit("12345678"), Some('5'));
        assert_eq!(check_digit("11111111"), Some('1'));
        assert_eq!(check_digit("10000013"), Some('K'));
        assert_eq!(check_digit("10000004"), Some('0'));
        assert_eq!(check_digit("12a4"), None);
        assert_eq!(check_digit(""), None);
    }

    #[test]
    fn check_digits_follow_modulo_11() {
        assert!(check_digit_ok("12345678-5"));
        assert!(check_digit_ok("11111111-1"));
        assert!(check_digit_ok("10000013-K"));
        assert!(check_digit_ok("10000013-k"));
        assert!(!check_digit_ok("12345678-9"));
        assert!(!check_digit_ok("12345678-55"));
        assert!(!check_digit_ok("123456789-5"), "at most 8 digits");
        assert!(!check_digit_ok("12.345.678-5"), "only the normalised form is checked");
    }

    #[test]
    fn generated_ruts_are_valid_and_normalised() {
        for body in [1_000_000, 10_000_004, 10_000_013, 12_345_678, 99_999_999] {
            let rut = for_number(body);
            assert!(check_digit_ok(&rut), "{rut}");
            assert_eq!(normalise(&rut), Ok(rut.clone()));
        }
        assert_eq!(for_number(12_345_678), "12345678-5");
    }
}
