//! API credentials, shared by the services that issue them: approval (a new
//! member's first key) and the gateway (a key a vendor rotates, or staff
//! re-issue). One place generates keys and staff tokens, computes the digest
//! `members` and `staff_tokens` store, and writes the credentials email
//! request, so every key reaches its owner the same way.
//!
//! Keys are `mamochi_` followed by 256 random bits in hex. Only the key's
//! SHA-256 is stored; the key is random enough that a fast hash cannot be
//! brute-forced, and an exact-match lookup by hash stays cheap per request.
//! The credentials email carries the key only sealed (`sealed_secret`, see
//! `mamochi_common::seal`): the notifier opens it when it writes the email, so
//! the key is never in clear text in Kafka.

use chrono::{DateTime, Utc};
use mamochi_rules::digest::sha256_hex;
use uuid::Uuid;

use crate::EmailRequested;

/// Prefix of every vendor key, so a leaked key is recognisable in logs and scanners.
pub const PREFIX: &str = "mamochi_";
/// Prefix of every staff token.
pub const STAFF_PREFIX: &str = "mamochi_staff_";
/// The email category of credentials emails (a notifier metrics label).
pub const EMAIL_CATEGORY: &str = "credentials";
const RANDOM_BYTES: usize = 32;

/// A freshly generated key; the clear text exists only until it is sealed
/// or handed to its owner.
#[derive(Debug)]
pub struct NewApiKey {
    pub clear: String,
    /// Public, non-secret handle: the prefix and the first 8 hex characters.
    pub key_id: String,
    pub sha256: String,
}

impl NewApiKey {
    /// The key whose clear text is `clear` (a key made elsewhere, such as a
    /// derived one), with its handle and digest.
    pub fn from_clear(prefix: &str, clear: String) -> Self {
        let key_id = clear.chars().take(prefix.len() + 8).collect();
        let sha256 = sha256_hex(&clear);
        Self { clear, key_id, sha256 }
    }
}

/// Why a key could not be generated.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

/// A new vendor API key.
pub fn generate() -> Result<NewApiKey, RandomError> {
    generate_with_prefix(PREFIX)
}

/// A new secret with `prefix` and 256 random bits (staff tokens use
/// [`STAFF_PREFIX`]).
pub fn generate_with_prefix(prefix: &str) -> Result<NewApiKey, RandomError> {
    let mut bytes = [0_u8; RANDOM_BYTES];
    getrandom::fill(&mut bytes).map_err(|error| RandomError(error.to_string()))?;
    Ok(NewApiKey::from_clear(prefix, format!("{prefix}{}", hex::encode(bytes))))
}

/// Why a credentials email is sent: the first key on approval, or a new key
/// staff issued in place of a lost one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occasion {
    Approved,
    Reissued,
}

/// Subject and body (in Spanish) of the credentials email. The key appears
/// only as `{secret}`, which the notifier fills in from the sealed key.
pub fn email_text(occasion: Occasion, full_name: &str, public_url: &str) -> (String, String) {
    let (subject, opening) = match occasion {
        Occasion::Approved => {
            ("MAMOCHI: su inscripción fue aprobada", "Su inscripción en MAMOCHI fue aprobada. Su clave de API es:")
        }
        Occasion::Reissued => (
            "MAMOCHI: su nueva clave de API",
            "El gremio emitió una nueva clave de API para usted; la anterior ya no sirve. Su nueva clave es:",
        ),
    };
    let body = format!(
        "Hola {full_name}:\n\n\
         {opening}\n\n    {{secret}}\n\n\
         Úsela en cada llamada a la API del gremio, en el encabezado\n\n    Authorization: Bearer {{secret}}\n\n\
         Por ejemplo, para registrar una venta:\n\n    \
         curl -X POST {public_url}/v1/sales \\\n      \
         -H 'Authorization: Bearer {{secret}}' \\\n      \
         -H 'Content-Type: application/json' \\\n      \
         -d '{{\"quantity\": 1, \"unit_price_clp\": 1500, \"payment_method\": \"cash\"}}'\n\n\
         y para ver su carro y su stock: curl {public_url}/v1/me -H 'Authorization: Bearer {{secret}}'\n\n\
         Guarde esta clave en un lugar seguro: por seguridad no la volveremos a enviar.\n\n\
         Gremio de Maestros Motehuesilleros de Chile (MAMOCHI)\n"
    );
    (subject.to_string(), body)
}

/// Everything a credentials email request needs besides the sealed key.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    pub email: &'a str,
    pub full_name: &'a str,
}

/// The request, for the notifier, of a credentials email carrying `sealed`
/// (the key sealed with the email key). `message_id` should be derived from
/// the business event, so a retried request is recognisably the same email.
pub fn email_request(
    message_id: Uuid,
    occasion: Occasion,
    to: Recipient<'_>,
    public_url: &str,
    sealed: Vec<u8>,
    now: DateTime<Utc>,
) -> EmailRequested {
    let (subject, body_text) = email_text(occasion, to.full_name, public_url);
    EmailRequested {
        message_id,
        to: to.email.to_string(),
        subject,
        body_text,
        category: EMAIL_CATEGORY.to_string(),
        requested_at: now,
        sealed_secret: Some(sealed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_has_the_prefix_256_random_bits_and_a_matching_hash() {
        let key = generate().expect("random source");

        assert!(key.clear.starts_with(PREFIX));
        assert_eq!(key.clear.len(), PREFIX.len() + 64);
        assert!(key.clear.starts_with(&key.key_id));
        assert_eq!(key.key_id.len(), PREFIX.len() + 8);
        assert_eq!(key.sha256, sha256_hex(&key.clear));
        assert_ne!(generate().expect("random source").clear, key.clear, "two keys differ");
    }

    #[test]
    fn staff_tokens_have_their_own_prefix() {
        let token = generate_with_prefix(STAFF_PREFIX).expect("random source");

        assert!(token.clear.starts_with(STAFF_PREFIX));
        assert_eq!(token.clear.len(), STAFF_PREFIX.len() + 64);
        assert_eq!(token.key_id.len(), STAFF_PREFIX.len() + 8);
    }

    #[test]
    fn the_email_explains_how_to_use_the_key_without_containing_it() {
        for occasion in [Occasion::Approved, Occasion::Reissued] {
            let request = email_request(
                Uuid::nil(),
                occasion,
                Recipient { email: "rosa@example.cl", full_name: "Rosa" },
                "http://api.example",
                vec![1, 2, 3],
                Utc::now(),
            );
            assert!(request.body_text.contains("Authorization: Bearer {secret}"));
            assert!(request.body_text.contains("http://api.example/v1/sales"));
            assert!(!request.body_text.contains("mamochi_"), "the key itself is filled in by the notifier");
            assert_eq!(
                (request.category.as_str(), request.sealed_secret.as_deref()),
                ("credentials", Some(&[1, 2, 3][..]))
            );
        }
        let (approved, _) = email_text(Occasion::Approved, "Rosa", "http://api.example");
        let (reissued, body) = email_text(Occasion::Reissued, "Rosa", "http://api.example");
        assert_ne!(approved, reissued, "a re-issued key is not announced as an approval");
        assert!(body.contains("la anterior ya no sirve"));
    }
}
