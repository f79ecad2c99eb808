//! An email address, checked for shape (not deliverability) and lower-cased,
//! so that the approval service's "one member per email" rule compares alike.

use super::Invalid;

#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

/// Personal data: `Debug`, which a stray `?value` in a log line prints,
/// shows the type only.
impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Email(<redacted>)")
    }
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let text = raw.trim().to_lowercase();
        let invalid = || Invalid::new("must be an email address such as rosa@example.cl");
        if text.len() > 254 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = text.split_once('@').ok_or_else(invalid)?;
        if local.is_empty() || local.len() > 64 || domain.contains('@') || local.contains("..") {
            return Err(invalid());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |label: &&str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(invalid());
        }
        Ok(Self(text))
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
        let value = Email::parse("rosa@example.cl").expect("valid");

        assert_eq!(format!("{value:?}"), "Email(<redacted>)");
    }

    #[test]
    fn an_address_is_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse(" Rosa.Perez@Example.CL ").map(|e| e.as_str().to_string()),
            Ok("rosa.perez@example.cl".into())
        );
        assert!(Email::parse("vendedora+mote@correo.municipal.cl").is_ok());
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for raw in [
            "",
            "rosa",
            "rosa@",
            "@example.cl",
            "rosa@example",
            "rosa@@example.cl",
            "ro sa@example.cl",
            "rosa@-x.cl",
            "rosa@example..cl",
            "a..b@example.cl",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw}");
        }
    }
}
