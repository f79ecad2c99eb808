//! A staff member's reason for rejecting a form: 1 to 500 characters once trimmed.

use super::Invalid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewReason(String);

impl ReviewReason {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 500 {
            return Err(Invalid::new("must be 1 to 500 characters"));
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
    fn a_reason_is_trimmed_and_bounded() {
        assert_eq!(ReviewReason::parse(" duplicate form ").map(|r| r.0), Ok("duplicate form".into()));
        assert!(ReviewReason::parse("  ").is_err());
        assert!(ReviewReason::parse(&"x".repeat(501)).is_err());
    }
}
