//! A comuna (municipality): non-empty once trimmed, at most 60 characters.

use super::Invalid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comuna(String);

impl Comuna {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Invalid::new("must not be empty"));
        }
        if trimmed.chars().count() > 60 || trimmed.chars().any(char::is_control) {
            return Err(Invalid::new("must be at most 60 printable characters"));
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comuna_is_trimmed() {
        assert_eq!(Comuna::parse(" Ñuñoa ").map(|c| c.as_str().to_string()), Ok("Ñuñoa".into()));
    }

    #[test]
    fn empty_and_overlong_comunas_are_refused() {
        assert!(Comuna::parse("   ").is_err());
        assert!(Comuna::parse(&"x".repeat(61)).is_err());
        assert!(Comuna::parse(&"x".repeat(60)).is_ok());
    }
}
