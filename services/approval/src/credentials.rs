//! API keys: `mamochi_` followed by 256 random bits in hex. Only the key's
//! SHA-256 is stored; the key is random enough that a fast hash cannot be
//! brute-forced, and an exact-match lookup by hash stays cheap per request.

use sha2::{Digest, Sha256};

/// Prefix of every key, so a leaked key is recognisable in logs and scanners.
pub const PREFIX: &str = "mamochi_";
const RANDOM_BYTES: usize = 32;

/// A freshly generated key; the clear text exists only until it is sealed.
#[derive(Debug)]
pub struct NewApiKey {
    pub clear: String,
    /// Public, non-secret handle: the prefix and the first 8 hex characters.
    pub key_id: String,
    pub sha256: String,
}

/// Why a key could not be generated.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

pub fn generate() -> Result<NewApiKey, RandomError> {
    let mut bytes = [0_u8; RANDOM_BYTES];
    getrandom::fill(&mut bytes).map_err(|error| RandomError(error.to_string()))?;
    let clear = format!("{PREFIX}{}", hex::encode(bytes));
    let key_id = clear[..PREFIX.len() + 8].to_string();
    let sha256 = sha256_hex(&clear);
    Ok(NewApiKey { clear, key_id, sha256 })
}

/// SHA-256 of a key, in lower-case hex: what `members.api_key_sha256` holds.
pub fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
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
        assert_eq!(key.sha256, sha256_hex(&key.clear));
        assert_ne!(generate().expect("random source").clear, key.clear, "two keys differ");
    }
}
