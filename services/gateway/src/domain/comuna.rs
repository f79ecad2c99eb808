//! A comuna (municipality), trimmed. The rule itself is mamochi-rules'
//! (`comuna::normalise`); this newtype is what the gateway's handlers accept.

use super::Invalid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comuna(String);

impl Comuna {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        mamochi_rules::comuna::normalise(raw).map(Self).map_err(|error| Invalid::new(error.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keeps_the_normal_form_and_refuses_with_the_rules_reason() {
        assert_eq!(Comuna::parse(" Ñuñoa ").map(|c| c.as_str().to_string()), Ok("Ñuñoa".into()));
        assert_eq!(Comuna::parse("   "), Err(Invalid::new("must not be empty")));
    }
}
