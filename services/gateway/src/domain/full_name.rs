//! A member's full name: 2 to 120 characters once trimmed, no control characters.

use super::Invalid;

#[derive(Clone, PartialEq, Eq)]
pub struct FullName(String);

/// Personal data: `Debug`, which a stray `?value` in a log line prints,
/// shows the type only.
impl std::fmt::Debug for FullName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FullName(<redacted>)")
    }
}

impl FullName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        let length = trimmed.chars().count();
        if !(2..=120).contains(&length) {
            return Err(Invalid::new("must be 2 to 120 characters long"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(Invalid::new("must not contain control characters"));
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
    fn debug_hides_the_value() {
        let value = FullName::parse("Rosa Pérez").expect("valid");

        assert_eq!(format!("{value:?}"), "FullName(<redacted>)");
    }

    #[test]
    fn a_name_with_accents_is_trimmed_and_kept() {
        assert_eq!(FullName::parse("  Rosa Ñúñez  ").map(|n| n.as_str().to_string()), Ok("Rosa Ñúñez".into()));
    }

    #[test]
    fn too_short_too_long_and_control_characters_are_refused() {
        assert!(FullName::parse(" R ").is_err());
        assert!(FullName::parse(&"a".repeat(121)).is_err());
        assert!(FullName::parse("Rosa\u{0}Pérez").is_err());
        assert!(FullName::parse(&"ñ".repeat(120)).is_ok(), "counted in characters, not bytes");
    }
}
