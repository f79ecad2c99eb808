//! A comuna (municipality) as the guild records it: non-empty once trimmed,
//! at most 60 printable characters; the normal form is the trimmed text.

/// The longest comuna name accepted, in characters.
pub const MAX_CHARS: usize = 60;

/// Why a written comuna was refused; the message is shown to the applicant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComunaError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 60 printable characters")]
    TooLongOrUnprintable,
}

/// A written comuna in its normal form (trimmed), or why it is refused.
pub fn normalise(raw: &str) -> Result<String, ComunaError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ComunaError::Empty);
    }
    if trimmed.chars().count() > MAX_CHARS || trimmed.chars().any(char::is_control) {
        return Err(ComunaError::TooLongOrUnprintable);
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comuna_is_trimmed() {
        assert_eq!(normalise(" Ñuñoa "), Ok("Ñuñoa".into()));
    }

    #[test]
    fn empty_overlong_and_unprintable_comunas_are_refused() {
        assert_eq!(normalise("   "), Err(ComunaError::Empty));
        assert_eq!(normalise(&"x".repeat(61)), Err(ComunaError::TooLongOrUnprintable));
        assert_eq!(normalise("Ñuñoa\u{7}"), Err(ComunaError::TooLongOrUnprintable));
        assert!(normalise(&"x".repeat(60)).is_ok());
    }
}
