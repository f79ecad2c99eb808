//! A Chilean RUT (national id) whose modulo-11 check digit is verified.
//!
//! Accepted as written on paper ("12.345.678-5"), with only the dash
//! ("12345678-5") or bare ("123456785"), check digit `K` in either case.
//! Normalised to digits, dash, check digit: "12345678-5", "7654321-K".

use super::Invalid;

#[derive(Clone, PartialEq, Eq)]
pub struct Rut(String);

/// Personal data: `Debug`, which a stray `?value` in a log line prints,
/// shows the type only.
impl std::fmt::Debug for Rut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rut(<redacted>)")
    }
}

impl Rut {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let text = raw.trim();
        let (body, check) = match text.rsplit_once('-') {
            Some((body, check)) => (body, check),
            None if !text.is_empty() => text.split_at(text.len() - text.chars().last().map_or(0, char::len_utf8)),
            None => return Err(Invalid::new("must not be empty")),
        };
        let digits = plain_digits(body)?;
        let check = match check {
            "k" | "K" => 'K',
            c if c.len() == 1 && c.bytes().all(|b| b.is_ascii_digit()) => c.chars().next().unwrap_or('?'),
            _ => return Err(Invalid::new("the check digit must be 0-9 or K")),
        };
        let digits = digits.trim_start_matches('0');
        if !(7..=8).contains(&digits.len()) {
            return Err(Invalid::new("must have 7 or 8 digits before the check digit"));
        }
        if check_digit(digits) != check {
            return Err(Invalid::new("the check digit does not match"));
        }
        Ok(Self(format!("{digits}-{check}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The body without thousands dots; dots, when used, must group by three.
fn plain_digits(body: &str) -> Result<String, Invalid> {
    let malformed = || Invalid::new("must look like 12.345.678-5, 12345678-5 or 123456785");
    let groups: Vec<&str> = body.split('.').collect();
    if groups.iter().any(|g| g.is_empty() || !g.bytes().all(|b| b.is_ascii_digit())) {
        return Err(malformed());
    }
    if groups.len() > 1 && (groups[0].len() > 3 || groups[1..].iter().any(|g| g.len() != 3)) {
        return Err(malformed());
    }
    Ok(groups.concat())
}

/// Modulo 11 with weights 2..7 from the right; 11 → '0', 10 → 'K'.
fn check_digit(digits: &str) -> char {
    let sum: u32 = digits
        .bytes()
        .rev()
        .zip([2u32, 3, 4, 5, 6, 7].iter().cycle())
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    match 11 - sum % 11 {
        11 => '0',
        10 => 'K',
        n => char::from_digit(n, 10).unwrap_or('?'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let value = Rut::parse("12.345.678-5").expect("valid");

        assert_eq!(format!("{value:?}"), "Rut(<redacted>)");
    }

    fn normalised(raw: &str) -> Result<String, Invalid> {
        Rut::parse(raw).map(|rut| rut.as_str().to_string())
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
        assert!(Rut::parse("12.345.678-9").is_err());
        assert!(Rut::parse("12345678K").is_err());
    }

    #[test]
    fn malformed_ruts_are_refused() {
        for raw in
            ["", "-", "12.34.5678-5", "1234.5678-5", "12a45678-5", "12345678-55", "123-4", "12345678-", "١٢٣٤٥٦٧٨-5"]
        {
            assert!(Rut::parse(raw).is_err(), "{raw}");
        }
    }
}
