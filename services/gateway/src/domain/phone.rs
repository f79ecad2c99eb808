//! A Chilean phone number, normalised to E.164 ("+569XXXXXXXX"). The rule
//! itself is mamochi-rules' (`phone::normalise`); this newtype is what the
//! gateway's handlers accept.

super::personal_data!(Phone, mamochi_rules::phone::normalise);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Invalid;

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
