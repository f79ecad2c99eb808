//! Secrets the gateway handles: tracking tokens it issues, API keys and
//! staff tokens it checks. Only SHA-256 digests are stored or compared, and
//! comparisons take the same time whatever the input.

use mamochi_rules::digest::sha256_hex;
use sha2::{Digest, Sha256};

/// Random bytes behind a tracking token: 256 bits, far above the 128 required.
const TOKEN_BYTES: usize = 32;

/// Why randomness was unavailable (the OS refused).
#[derive(Debug, thiserror::Error)]
#[error("no randomness available: {0}")]
pub struct RandomError(String);

/// A new tracking token, in lower-case hex.
pub fn tracking_token() -> Result<String, RandomError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|error| RandomError(error.to_string()))?;
    Ok(hex::encode(bytes))
}

/// Whether two secrets are equal, in time independent of where they differ:
/// both are hashed first, so lengths leak nothing either.
pub fn constant_time_eq(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `given` hashes to the stored hex digest, in constant time.
pub fn matches_digest(given: &str, stored_hex: &str) -> bool {
    let computed = sha256_hex(given);
    computed.len() == stored_hex.len()
        && computed.bytes().zip(stored_hex.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_hex_and_differ() {
        let (a, b) = (tracking_token().expect("random"), tracking_token().expect("random"));
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn digests_match_only_their_secret() {
        let digest = sha256_hex("mamochi_secret");
        assert!(matches_digest("mamochi_secret", &digest));
        assert!(!matches_digest("mamochi_secreT", &digest));
        assert!(constant_time_eq("admin", "admin"));
        assert!(!constant_time_eq("admin", "admin2"));
    }
}
