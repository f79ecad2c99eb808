//! SHA-256 digests in lower-case hex: what the database keeps of API keys,
//! staff tokens and tracking tokens, so a digest computed anywhere matches the
//! stored one.

use sha2::{Digest, Sha256};

/// SHA-256 of `text`, in lower-case hex (64 characters).
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_the_standard_sha256_in_lower_case_hex() {
        // The FIPS 180-2 test vector for "abc".
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(sha256_hex("").len(), 64);
        assert_ne!(sha256_hex("a"), sha256_hex("b"));
    }
}
