//! A Chilean vehicle plate, old (AB1234) or current (BCDF12), normalised to
//! upper case without separators. The rule itself is mamochi-rules'
//! (`plate::normalise`); this newtype is what the gateway's handlers accept.

super::personal_data!(CartPlate, mamochi_rules::plate::normalise);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Invalid;

    #[test]
    fn debug_hides_the_value() {
        let value = CartPlate::parse("BC-DF-12").expect("valid");

        assert_eq!(format!("{value:?}"), "CartPlate(<redacted>)");
    }

    #[test]
    fn parse_keeps_the_normal_form_and_refuses_with_the_rules_reason() {
        assert_eq!(CartPlate::parse("bc-df-12").map(|plate| plate.as_str().to_string()), Ok("BCDF12".into()));
        assert_eq!(CartPlate::parse("BADF12"), Err(Invalid::new("must be a plate like AB1234 or BCDF12")));
    }
}
