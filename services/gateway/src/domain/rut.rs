//! A Chilean RUT (national id) whose modulo-11 check digit is verified.
//!
//! Accepted as written on paper ("12.345.678-5"), with only the dash
//! ("12345678-5") or bare ("123456785"), check digit `K` in either case.
//! Normalised to digits, dash, check digit: "12345678-5", "7654321-K".
//! The rule itself is mamochi-rules' (`rut::normalise`), shared with the
//! approval service; this newtype is what the gateway's handlers accept.

super::personal_data!(Rut, mamochi_rules::rut::normalise);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Invalid;

    #[test]
    fn debug_hides_the_value() {
        let value = Rut::parse("12.345.678-5").expect("valid");

        assert_eq!(format!("{value:?}"), "Rut(<redacted>)");
    }

    #[test]
    fn parse_keeps_the_normal_form_and_refuses_with_the_rules_reason() {
        assert_eq!(Rut::parse("12.345.678-5").map(|rut| rut.as_str().to_string()), Ok("12345678-5".into()));
        assert_eq!(Rut::parse("12.345.678-9"), Err(Invalid::new("the check digit does not match")));
    }
}
